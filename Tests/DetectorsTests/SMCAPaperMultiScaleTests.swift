import Detection
import Foundation
import Testing
import Torch
import TorchNN
import TorchTestSupport

@testable import Detectors

/// The paper's multi-scale SMCA-DETR, whose code was never released, equals an independent PyTorch
/// transcription of the spec (`Scripts/goldens/make_smca_paper_goldens.py`): the intra- and
/// multi-scale encoder layers, three key segments with their own priors and softmaxes, scale selection
/// per image, two images of different sizes.
@Suite struct SMCAPaperMultiScaleTests {
  static let folder = DETRTests.fixture("smca_paper_transcription")

  @Test func everyLayersPredictionsEqualTheTranscription() throws {
    var config = SMCAConfig()
    config.encoder = .attentionMultiScale
    config.encoderLayout = [.intraScale, .multiScale, .intraScale]
    config.backbone = BackboneConfig(blocksPerStage: [1, 1, 1, 1], stemChannels: 16, stageChannels: [16, 32, 64, 128], bottleneck: false)
    config.transformer = TransformerSettings(hiddenDim: 32, heads: 4, encoderLayers: 3, decoderLayers: 2, feedForwardDim: 32, dropout: 0, queries: 12)
    config.classCount = 5
    let model = try withSeededGenerator(0) { try SMCAPaperMultiScaleModel(config: config) }
    try model.load(stateDict: SafeTensors.load(contentsOf: Self.folder.appendingPathComponent("model.safetensors")).tensors)
    model.eval()
    let golden = try Goldens(Self.folder.appendingPathComponent("golden.safetensors"))
    let images = golden["images"].to(.float32)
    let sizes = [(height: 192, width: 256), (height: 160, width: 224)]
    let mask = Tensor.ones([2, 192, 256], dtype: .bool)
    for (index, size) in sizes.enumerated() { mask[index, 0..<size.height, 0..<size.width] = Tensor.zeros([size.height, size.width], dtype: .bool) }
    let output = withInferenceMode { model.predictions(for: DetectorBatch(images: images, paddingMask: mask, imageSizes: sizes)) }
    for (index, layer) in (output.auxiliary + [output.final]).enumerated() {
      expectClose(layer.logits, golden["logits"][index], relative: 0, absolute: 1e-4, "layer \(index) logits")
      expectClose(layer.boxes, golden["boxes"][index], relative: 0, absolute: 1e-4, "layer \(index) boxes")
    }
  }

  @Test func theLayoutMustNameEveryEncoderLayer() {
    var config = SMCAConfig.r50PaperMultiScale
    config.encoderLayout = [.intraScale]
    #expect { try SMCAPaperMultiScaleModel(config: config) } throws: { error in
      "\(error)".contains("encoder_layout has 1 entries for transformer.encoder_layers 5")
    }
  }
}
