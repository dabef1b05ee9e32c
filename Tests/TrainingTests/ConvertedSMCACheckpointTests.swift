import COCO
import Detection
import Detectors
import Foundation
import Testing
import Torch
import TorchTestSupport

@testable import Training

/// Official SMCA-DETR checkpoints as the former Python converter wrote them (the official
/// keys unchanged, the architecture in full under "config", as with `--config`) load and detect as the
/// official models do, single scale and the released multi-scale model.
@Suite struct ConvertedSMCACheckpointTests {
  /// A converted folder holding the int8 fixture's official weights and `config`.
  static func convertedFolder(fixture: String, config: SMCAConfig) throws -> URL {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("converted-smca-\(UUID())")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    let weights = CheckpointTests.fixtures.appendingPathComponent("\(fixture)/model.safetensors")
    try SafeTensors.save(
      SafeTensors.load(contentsOf: weights).tensors.mapValues { $0.dtype == .int8 ? $0.to(.float32) / 64 : $0 },
      to: folder.appendingPathComponent("model.safetensors"))
    let manifest: [String: Any] = [
      "format": "swift-detr", "version": 1, "model": "smca-detr",
      "config": try JSONSerialization.jsonObject(with: JSONEncoder().encode(config)),
      "categories": ["categories": (0..<5).map { ["id": $0, "name": "class \($0)"] }],
    ]
    try JSONSerialization.data(withJSONObject: manifest).write(to: folder.appendingPathComponent("config.json"))
    return folder
  }

  static var smallBackbone: BackboneConfig {
    BackboneConfig(blocksPerStage: [1, 1, 1, 1], stemChannels: 16, stageChannels: [16, 32, 64, 128], bottleneck: false)
  }

  /// Each official detection of a real class is the converted model's, in order.
  static func expectOfficialDetections(_ image: ImageDetections, _ golden: Goldens, prefix: String) {
    let labels = golden["\(prefix).labels"].asArray(Int.self)
    let real = Array(labels.indices.filter { labels[$0] < 5 }.prefix(image.scores.count))
    #expect(real.count == image.scores.count)
    #expect(image.labels == real.map { labels[$0] })
    let rows = Tensor(real, shape: [real.count])
    expectClose(Tensor(image.scores), golden["\(prefix).scores"].indexSelect(dim: 0, index: rows), relative: 0, absolute: 1e-4, "scores")
  }

  @Test func singleScaleLoadsAndDetectsAsTheOfficialModel() throws {
    var config = SMCAConfig()
    config.backbone = Self.smallBackbone
    config.transformer = TransformerSettings(encoderLayers: 1, decoderLayers: 2, feedForwardDim: 32, dropout: 0, queries: 20)
    config.classCount = 5
    let folder = try Self.convertedFolder(fixture: "smca_official", config: config)
    defer { try? FileManager.default.removeItem(at: folder) }
    let loaded = try DetectorCheckpoint.load(folder)
    #expect(loaded.detector.kind == .smcaDETR && loaded.categories.count == 5 && !loaded.detector.isTraining)
    let golden = try Goldens(CheckpointTests.fixtures.appendingPathComponent("smca_official/golden.safetensors"))
    // The first image, alone and unpadded (192x256), reported at 384x512 as in the fixture.
    let image = golden["images"][0..<1].to(.float32)
    let batch = DetectorBatch(
      images: image, paddingMask: Tensor.zeros([1, 192, 256], dtype: .bool), imageSizes: [(192, 256)], outputSizes: [(384, 512)])
    let detections = withInferenceMode { loaded.detector.detect(batch) }
    Self.expectOfficialDetections(detections[0], golden, prefix: "type3.detections.0")
  }

  @Test func releasedMultiScaleLoadsAndDetectsAsTheOfficialModel() throws {
    var config = SMCAConfig()
    config.encoder = .depthwiseMultiScale
    config.backbone = Self.smallBackbone
    config.transformer = TransformerSettings(encoderLayers: 1, decoderLayers: 2, feedForwardDim: 32, dropout: 0, queries: 100)
    config.classCount = 5
    let folder = try Self.convertedFolder(fixture: "smca_multi_scale_official", config: config)
    defer { try? FileManager.default.removeItem(at: folder) }
    let loaded = try DetectorCheckpoint.load(folder)
    #expect(loaded.detector is SMCAMultiScaleModel)
    let golden = try Goldens(CheckpointTests.fixtures.appendingPathComponent("smca_multi_scale_official/golden.safetensors"))
    let image = golden["multi.image1.image"].to(.float32).unsqueezed(dim: 0)  // 160x224, reported at 300x420
    let batch = DetectorBatch(
      images: image, paddingMask: Tensor.zeros([1, 160, 224], dtype: .bool), imageSizes: [(160, 224)], outputSizes: [(300, 420)])
    let detections = withInferenceMode { loaded.detector.detect(batch) }
    Self.expectOfficialDetections(detections[0], golden, prefix: "multi.image1.detections")
  }
}
