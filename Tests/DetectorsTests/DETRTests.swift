import Foundation
import Testing
import Torch
import TorchNN
import TorchTestSupport

@testable import Detectors

/// DETR loaded from a transformers folder gives transformers' outputs
/// (fixtures from Scripts/goldens/make_detector_goldens.py).
@Suite struct DETRTests {
  static func fixture(_ name: String) -> URL { Bundle.module.url(forResource: "Fixtures/\(name)", withExtension: nil)! }

  /// `detr_per_side`: encoder 2 heads and FFN 48, decoder 8 heads and FFN 80.
  @Test(arguments: ["detr_r50_small", "detr_per_side"])
  func transformersCheckpointGivesTheSameLogitsAndBoxes(name: String) throws {
    let folder = Self.fixture(name)
    let model = try withSeededGenerator(0) { try DETRModel.load(transformers: TransformersCheckpoint(folder: folder)) }
    #expect(model.config.backbone.blocksPerStage == [3, 4, 6, 3] && model.config.transformer.queries == 12 && model.config.classCount == 5)
    Self.expectSides(model.config.transformer, perSide: name.hasSuffix("per_side"))
    let expected = try Goldens(folder.appendingPathComponent("expected.safetensors"))
    let padding = expected["pixel_mask"] .== 0
    let output = withInferenceMode { model(images: expected["pixel_values"], paddingMask: padding) }
    expectClose(output.final.logits, expected["logits"], relative: 0, absolute: 1e-4, "logits")
    expectClose(output.final.boxes, expected["pred_boxes"], relative: 0, absolute: 1e-4, "boxes")
    #expect(output.auxiliary.count == 1)
  }

  /// The per-side fixtures' widths, or one width for both sides.
  static func expectSides(_ settings: TransformerSettings, perSide: Bool, sourceLocation: SourceLocation = #_sourceLocation) {
    if perSide {
      #expect(settings.encoder == .init(heads: 2, feedForwardDim: 48), sourceLocation: sourceLocation)
      #expect(settings.decoder == .init(heads: 8, feedForwardDim: 80), sourceLocation: sourceLocation)
    } else {
      #expect(settings.encoder == settings.decoder && settings.decoderHeads == nil, sourceLocation: sourceLocation)
    }
  }

  @Test func referenceKeysForTheR50Preset() {
    let model = withSeededGenerator(0) { DETRModel(config: .r50) }
    let keys = Set(model.stateDict().map(\.key))
    for key in [
      "backbone.0.body.layer4.2.bn3.running_var", "transformer.encoder.layers.5.self_attn.in_proj_weight",
      "transformer.decoder.layers.0.multihead_attn.out_proj.bias", "transformer.decoder.norm.weight", "class_embed.weight",
      "bbox_embed.layers.2.bias", "query_embed.weight", "input_proj.weight",
    ] {
      #expect(keys.contains(key), "\(key)")
    }
    let parameters = model.parameters().reduce(0) { $0 + $1.elementCount }
    #expect(abs(Double(parameters) - 41.525e6) < 0.01e6, "DETR R50 with 91 classes has 41.5 M weights (\(parameters))")
  }

  @Test func wrongCheckpointsGiveClearErrors() throws {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("detr-bad-\(UUID())")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: folder) }
    #expect { try TransformersCheckpoint(folder: folder) } throws: { "\($0)".contains("config.json") }
    let source = Self.fixture("detr_r50_small")
    let config = try String(contentsOf: source.appendingPathComponent("config.json"), encoding: .utf8)
    try config.replacingOccurrences(of: "\"model_type\": \"detr\"", with: "\"model_type\": \"deformable_detr\"")
      .write(to: folder.appendingPathComponent("config.json"), atomically: true, encoding: .utf8)
    #expect { try TransformersCheckpoint(folder: folder) } throws: { "\($0)".contains("model.safetensors") }
    try FileManager.default.copyItem(
      at: source.appendingPathComponent("model.safetensors"), to: folder.appendingPathComponent("model.safetensors"))
    #expect { try DETRModel.load(transformers: TransformersCheckpoint(folder: folder)) } throws: { "\($0)".contains("not DETR") }
    try config.replacingOccurrences(of: "\"activation_function\": \"relu\"", with: "\"activation_function\": \"gelu\"")
      .write(to: folder.appendingPathComponent("config.json"), atomically: true, encoding: .utf8)
    #expect { try DETRModel.load(transformers: TransformersCheckpoint(folder: folder)) } throws: {
      "\($0)".contains("'activation_function'")
    }
    try config.replacingOccurrences(of: "\"num_queries\": 12", with: "\"num_queries\": 13")
      .write(to: folder.appendingPathComponent("config.json"), atomically: true, encoding: .utf8)
    #expect { try withSeededGenerator(0) { try DETRModel.load(transformers: TransformersCheckpoint(folder: folder)) } } throws: {
      "\($0)".contains("query_embed.weight: expected shape [13, 32], found [12, 32]")
    }
    let truncated = try Data(contentsOf: source.appendingPathComponent("model.safetensors"))
    try truncated.prefix(truncated.count / 2).write(to: folder.appendingPathComponent("model.safetensors"))
    #expect(throws: SafeTensorsError.self) { try TransformersCheckpoint(folder: folder) }
  }
}

@Suite struct ConditionalDETRTests {
  @Test(arguments: ["conditional_detr_r50_small", "conditional_detr_per_side"])
  func transformersCheckpointGivesTheSameLogitsAndBoxes(name: String) throws {
    let folder = DETRTests.fixture(name)
    let model = try withSeededGenerator(0) { try ConditionalDETRModel.load(transformers: TransformersCheckpoint(folder: folder)) }
    #expect(model.config.transformer.decoderLayers == 3 && model.config.classCount == 5)
    DETRTests.expectSides(model.config.transformer, perSide: name.hasSuffix("per_side"))
    let expected = try Goldens(folder.appendingPathComponent("expected.safetensors"))
    let output = withInferenceMode { model(images: expected["pixel_values"], paddingMask: expected["pixel_mask"] .== 0) }
    expectClose(output.final.logits, expected["logits"], relative: 0, absolute: 1e-4, "logits")
    expectClose(output.final.boxes, expected["pred_boxes"], relative: 0, absolute: 1e-4, "boxes")
    #expect(output.auxiliary.count == 2)
  }

  @Test func referenceKeysAndSizeForTheR50Preset() {
    let model = withSeededGenerator(0) { ConditionalDETRModel(config: .r50) }
    let keys = Set(model.stateDict().map(\.key))
    for key in [
      "transformer.decoder.layers.0.ca_qpos_proj.weight", "transformer.decoder.layers.5.ca_qpos_sine_proj.bias",
      "transformer.decoder.layers.3.cross_attn.out_proj.weight", "transformer.decoder.query_scale.layers.1.weight",
      "transformer.decoder.ref_point_head.layers.1.bias", "class_embed.weight",
    ] {
      #expect(keys.contains(key), "\(key)")
    }
    #expect(!keys.contains("transformer.decoder.layers.1.ca_qpos_proj.weight"), "only the first layer has a position query projection")
    let parameters = model.parameters().reduce(0) { $0 + $1.elementCount }
    #expect(abs(Double(parameters) - 43.418e6) < 0.01e6, "Conditional DETR R50 with 91 classes: 43.4 M (\(parameters))")
  }
}
