import COCO
import Detection
import Detectors
import Foundation
import Testing
import Torch
import TorchTestSupport

@testable import Training

/// A detrex DINO checkpoint as the former Python converter wrote it (detrex's keys,
/// the aliased heads included, `"layout": "detrex"`) loads and detects as detrex does.
@Suite struct ConvertedCheckpointTests {
  static let fixture = CheckpointTests.fixtures.appendingPathComponent("dino_detrex")

  /// The fixture's architecture (see Scripts/goldens/make_detrex_goldens.py).
  static var config: DINOConfig {
    var config = DINOConfig()
    config.backbone = BackboneConfig(blocksPerStage: [1, 1, 1, 1], stemChannels: 16, stageChannels: [32, 64, 128, 64], bottleneck: true)
    config.transformer = TransformerSettings(encoderLayers: 1, decoderLayers: 2, feedForwardDim: 32, dropout: 0, queries: 30)
    (config.classCount, config.denoisingQueries, config.detectionsPerImage) = (5, 10, 30)
    return config
  }

  /// The folder of a converted checkpoint with the fixture's weights, its config given in full.
  static func convertedFolder(layout: String) throws -> URL {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("converted-\(UUID())")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    var state = try SafeTensors.load(contentsOf: fixture.appendingPathComponent("model.safetensors")).tensors.mapValues {
      $0.to(.float32) / 64
    }
    for (key, value) in state where key.hasPrefix("class_embed.") || key.hasPrefix("bbox_embed.") {
      state["transformer.decoder." + key] = value
    }
    try SafeTensors.save(state, to: folder.appendingPathComponent("model.safetensors"))
    let manifest: [String: Any] = [
      "format": "swift-detr", "version": 1, "model": "dino", "layout": layout,
      "config": try JSONSerialization.jsonObject(with: JSONEncoder().encode(config)),
      "categories": ["categories": (0..<5).map { ["id": $0 + 1, "name": "class \($0)"] }],
    ]
    try JSONSerialization.data(withJSONObject: manifest).write(to: folder.appendingPathComponent("config.json"))
    return folder
  }

  @Test func detrexLayoutLoadsAndDetectsAsDetrex() throws {
    let folder = try Self.convertedFolder(layout: "detrex")
    defer { try? FileManager.default.removeItem(at: folder) }
    let loaded = try DetectorCheckpoint.load(folder)
    #expect(loaded.detector.kind == .dino && loaded.categories.count == 5 && !loaded.detector.isTraining)
    try Self.expectDetectsAsDetrex(loaded)
  }

  /// The fixture's evaluation images through `loaded` give detrex's detections.
  static func expectDetectsAsDetrex(_ loaded: LoadedDetector) throws {
    let golden = try Goldens(Self.fixture.appendingPathComponent("eval.safetensors"))
    let mean = Tensor([123.675, 116.280, 103.530] as [Float]).view(1, 3, 1, 1)
    let std = Tensor([58.395, 57.120, 57.375] as [Float]).view(1, 3, 1, 1)
    let images = (golden["pixels"].to(.float32) - mean) / std
    let detections = withInferenceMode { loaded.detector.detect(DetectorBatch(unpaddedImages: images)) }
    for (index, image) in detections.enumerated() {
      expectClose(Tensor(image.scores), golden["detections.\(index).scores"], relative: 0, absolute: 1e-4, "scores")
      #expect(image.labels == golden["detections.\(index).labels"].asArray(Int.self))
    }
  }

  @Test func anUnknownLayoutIsRefusedByName() throws {
    let folder = try Self.convertedFolder(layout: "mmdet")
    defer { try? FileManager.default.removeItem(at: folder) }
    #expect {
      try DetectorCheckpoint.load(folder)
    } throws: {
      "\($0)".contains("'layout' mmdet") && "\($0)".contains("config.json")
    }
  }
}

/// A torchvision RetinaNet checkpoint as the former Python converter wrote it (torchvision's
/// keys, `"layout": "torchvision"`) loads through the checkpoint folder and detects as torchvision does.
@Suite struct ConvertedRetinaNetCheckpointTests {
  static let fixture = CheckpointTests.fixtures.appendingPathComponent("retinanet_torchvision")

  /// The fixture's architecture (see Scripts/goldens/make_retinanet_torchvision_goldens.py).
  static var config: RetinaNetConfig {
    var config = RetinaNetConfig.r50Torchvision
    config.backbone = BackboneConfig(blocksPerStage: [1, 1, 1, 1], stemChannels: 8, stageChannels: [8, 16, 32, 64], bottleneck: false)
    (config.channels, config.classCount) = (32, 5)
    return config
  }

  @Test func torchvisionLayoutLoadsAndDetectsAsTorchvision() throws {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("converted-retinanet-\(UUID())")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: folder) }
    try FileManager.default.copyItem(
      at: Self.fixture.appendingPathComponent("model.safetensors"), to: folder.appendingPathComponent("model.safetensors"))
    let manifest: [String: Any] = [
      "format": "swift-detr", "version": 1, "model": "retinanet", "layout": "torchvision",
      "config": try JSONSerialization.jsonObject(with: JSONEncoder().encode(Self.config)),
      "categories": ["categories": (0..<5).map { ["id": $0, "name": "class \($0)"] }],
    ]
    try JSONSerialization.data(withJSONObject: manifest).write(to: folder.appendingPathComponent("config.json"))
    let loaded = try withSeededGenerator(0) { try DetectorCheckpoint.load(folder) }
    try Self.expectDetectsAsTorchvision(loaded)
  }

  /// The fixture's images through `loaded` give torchvision's detections.
  static func expectDetectsAsTorchvision(_ loaded: LoadedDetector) throws {
    let golden = try Goldens(Self.fixture.appendingPathComponent("golden.safetensors"))
    let sizes = [(height: 128, width: 160), (height: 96, width: 128)]
    let mask = Tensor.ones([2, 128, 160], dtype: .bool)
    for (index, size) in sizes.enumerated() { mask[index, 0..<size.height, 0..<size.width] = Tensor.zeros([size.height, size.width], dtype: .bool) }
    let found = withInferenceMode { loaded.detector.detect(DetectorBatch(images: golden["images"], paddingMask: mask, imageSizes: sizes)) }
    for (image, detections) in found.enumerated() {
      let expected = golden["detections\(image).boxes"]
      #expect(detections.boxes.count == expected.size(0))
      expectClose(Tensor(detections.boxes.flatMap { $0.map(Float.init) }, shape: [detections.boxes.count, 4]), expected, relative: 1e-4, absolute: 1e-3, "boxes")
      #expect(detections.labels == golden["detections\(image).labels"].to(.int64).asArray(Int64.self).map { Int($0) })
    }
  }
}
