import Detection
import Foundation
import Testing
import Torch
import TorchNN
import TorchTestSupport

@testable import Detectors

/// Deformable DETR variants loaded from transformers folders give transformers' outputs
/// (fixtures from Scripts/goldens/make_detector_goldens.py).
@Suite struct DeformableDETRTests {
  @Test(arguments: [
    "deformable_single_scale", "deformable_multi_scale", "deformable_box_refine", "deformable_two_stage", "deformable_levels_heads_points",
    "deformable_per_side",
  ])
  func transformersCheckpointGivesTheSameLogitsAndBoxes(name: String) throws {
    let folder = DETRTests.fixture(name)
    let model = try withSeededGenerator(0) { try DeformableDETRModel.load(transformers: TransformersCheckpoint(folder: folder)) }
    let expected = try Goldens(folder.appendingPathComponent("expected.safetensors"))
    let output = withInferenceMode { model(images: expected["pixel_values"], paddingMask: expected["pixel_mask"] .== 0) }
    expectClose(output.final.logits, expected["logits"], relative: 0, absolute: 1e-4, "\(name) logits")
    expectClose(output.final.boxes, expected["pred_boxes"], relative: 0, absolute: 1e-4, "\(name) boxes")
    #expect(output.auxiliary.count == model.config.transformer.decoderLayers - 1)
    #expect((output.encoder != nil) == model.config.twoStage)
    if name == "deformable_per_side" { DETRTests.expectSides(model.config.transformer, perSide: true) }
  }

  @Test func attentionMaskIsDroppedOnlyWhenNothingIsPadded() {
    let maps = [Tensor.randn([2, 4, 3, 4]), Tensor.randn([2, 4, 2, 2])]
    let encoding = SinePositionEncoding(featuresPerAxis: 2)
    let unpadded = MultiScaleTokens(
      maps: maps, paddingMask: Tensor.zeros([2, 12, 16], dtype: .bool), encoding: encoding, levelEmbedding: Tensor.zeros([2, 4]))
    #expect(unpadded.attentionMask == nil && unpadded.mask.shape == [2, 16])
    let mask = Tensor.zeros([2, 12, 16], dtype: .bool)
    mask[1, .all, 8...].fill(with: true)
    let padded = MultiScaleTokens(maps: maps, paddingMask: mask, encoding: encoding, levelEmbedding: Tensor.zeros([2, 4]))
    #expect(padded.attentionMask != nil)
    expectClose(padded.validRatios[1, 0], Tensor([0.5, 1] as [Float]), relative: 0, absolute: 1e-6, "valid ratios")
  }

  @Test func presetsHaveTheReferenceKeysAndSizes() {
    let expectations: [(DeformableDETRConfig, Double)] = [(.r50, 40.070e6), (.r50SingleScale, 34.067e6), (.r50TwoStage, 41.182e6)]
    for (config, parameters) in expectations {
      let model = withSeededGenerator(0) { DeformableDETRModel(config: config) }
      let count = model.parameters().reduce(0) { $0 + $1.elementCount }
      #expect(abs(Double(count) - parameters) < 0.01e6, "\(config.featureLevels) levels, two-stage \(config.twoStage): \(count)")
    }
    let refined = withSeededGenerator(0) { DeformableDETRModel(config: .r50BoxRefinement) }
    let keys = Set(refined.stateDict().map(\.key))
    #expect(keys.contains("transformer.decoder.bbox_embed.5.layers.2.bias") && keys.contains("bbox_embed.5.layers.2.bias"))
    #expect(
      keys.contains("transformer.level_embed") && keys.contains("transformer.reference_points.weight")
        && keys.contains("input_proj.3.1.weight"))
  }
}
