import COCO
import Detection
import Detectors
import Foundation
import Testing
import Torch
import TorchTestSupport

@testable import Training

/// `CheckpointConversion` of .pth files that torch wrote in each repository's container
/// (Scripts/goldens/make_pth_from_fixtures.py) from the weights of the official-code fixtures: the
/// converted folder holds exactly the weights the parity tests prove equal to the official models.
@Suite struct PthConversionTests {
  static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/pth")
  static let detectorFixtures = CheckpointTests.fixtures

  /// Converts `name` with `config` into a fresh folder and loads it back.
  static func convert(_ name: String, family: ModelKind, config: some Encodable) throws -> (LoadedDetector, ConversionReport) {
    let output = FileManager.default.temporaryDirectory.appendingPathComponent("pth-\(UUID())")
    defer { try? FileManager.default.removeItem(at: output) }
    let report = try CheckpointConversion.convert(
      folder.appendingPathComponent(name), family: family, preset: nil, configJSON: JSONEncoder().encode(config), to: output)
    return (try DetectorCheckpoint.load(output), report)
  }

  /// Every weight of the fixture (int8 · 1/64 when `scaled`) equals the converted detector's, key for key.
  static func expectSameWeights(_ loaded: LoadedDetector, fixture: String, scaled: Bool, except skipped: (String) -> Bool = { _ in false }) throws {
    let reference = try SafeTensors.load(contentsOf: detectorFixtures.appendingPathComponent("\(fixture)/model.safetensors")).tensors
    let converted = Dictionary(uniqueKeysWithValues: loaded.detector.stateDict().map { ($0.key, $0.tensor) })
    var compared = 0
    for (key, value) in reference where !key.hasSuffix("num_batches_tracked") && !skipped(key) {
      guard let mine = converted[key] else {
        Issue.record("\(fixture): \(key) is not in the converted detector")
        continue
      }
      let expected = scaled ? value.to(.float32) / 64 : value
      #expect((mine .== expected).all().item(Bool.self), "\(fixture): \(key) differs")
      compared += 1
    }
    #expect(compared == converted.count, "\(fixture): compared \(compared) of the converted detector's \(converted.count) tensors")
  }

  @Test func smcaTrainingCheckpointWithArgsGivesTheParityWeights() throws {
    var config = SMCAConfig()
    config.backbone = BackboneConfig(blocksPerStage: [1, 1, 1, 1], stemChannels: 16, stageChannels: [16, 32, 64, 128], bottleneck: false)
    config.transformer = TransformerSettings(encoderLayers: 1, decoderLayers: 2, feedForwardDim: 32, dropout: 0, queries: 20)
    (config.classCount, config.scale) = (5, .perAxis)
    let (loaded, report) = try Self.convert("smca.pth", family: .smcaDETR, config: config)
    #expect(report.layout == "official" && report.unused.isEmpty && loaded.categories.count == 5)
    try Self.expectSameWeights(loaded, fixture: "smca_official", scaled: true)
  }

  @Test func detrexDINOCheckpointDetectsAsDetrex() throws {
    let (loaded, report) = try Self.convert("dino.pth", family: .dino, config: ConvertedCheckpointTests.config)
    #expect(report.layout == "detrex" && report.unused.isEmpty)
    try ConvertedCheckpointTests.expectDetectsAsDetrex(loaded)
  }

  @Test func torchvisionRetinaNetStateDictDetectsAsTorchvision() throws {
    let (loaded, report) = try Self.convert("retinanet.pth", family: .retinaNet, config: ConvertedRetinaNetCheckpointTests.config)
    #expect(report.layout == "torchvision" && report.unused.isEmpty)
    try ConvertedRetinaNetCheckpointTests.expectDetectsAsTorchvision(loaded)
  }

  @Test func mmdetectionDSACheckpointGivesTheParityWeights() throws {
    var config = RetinaNetConfig.r50DSAConfidence
    config.backbone = BackboneConfig(blocksPerStage: [2, 2, 2, 2], stemChannels: 8, stageChannels: [8, 16, 32, 64], bottleneck: false)
    (config.channels, config.classCount) = (32, 5)
    (config.legacyScoreFusion, config.gradientThroughIoUTarget) = (true, true)
    let (loaded, report) = try Self.convert("dsa.pth", family: .dsaRetinaNet, config: config)
    #expect(report.layout == "mmdetection" && report.unused.isEmpty)
    try Self.expectSameWeights(loaded, fixture: "dsa_official", scaled: false)
  }

  // MARK: - Errors name the culprit

  func expectConversionError(_ name: String, family: ModelKind?, preset: String? = nil, config: (some Encodable)? = Optional<DETRConfig>.none, _ parts: String...) {
    let output = FileManager.default.temporaryDirectory.appendingPathComponent("pth-error-\(UUID())")
    defer { try? FileManager.default.removeItem(at: output) }
    #expect {
      try CheckpointConversion.convert(
        Self.folder.appendingPathComponent(name), family: family, preset: preset, configJSON: config.map { try JSONEncoder().encode($0) }, to: output)
    } throws: { error in
      parts.allSatisfy { "\(error)".contains($0) }
    }
    #expect(!FileManager.default.fileExists(atPath: output.path), "a failed conversion leaves no folder")
  }

  @Test func aCheckpointOfAnotherFamilyIsRefused() {
    expectConversionError("dino.pth", family: .focusDETR, "dino.pth", "does not look like a focus-detr checkpoint", "--family")
    expectConversionError("smca.pth", family: .detr, "smca.pth", "does not look like a detr checkpoint")
    expectConversionError("retinanet.pth", family: .dsaRetinaNet, "retinanet.pth", "does not look like a dsa-retinanet checkpoint")
  }

  @Test func aPresetOfTheWrongShapeNamesTheKeys() {
    // A 5-class checkpoint is not COCO's: the preset's architecture needs --config.
    expectConversionError("smca.pth", family: .smcaDETR, preset: "r50", "smca.pth", "5 classes", "--config")
    var config = ConvertedRetinaNetCheckpointTests.config
    config.channels = 16
    expectConversionError("retinanet.pth", family: .retinaNet, config: config, "does not fit retinanet", "wrong shape", "--preset")
  }

  @Test func aFamilyIsNeededForAPthAndSDDETRHasNoRelease() {
    expectConversionError("dsa.pth", family: nil, "dsa.pth", "--family")
    expectConversionError("dsa.pth", family: .sdDETR, "no official release")
  }
}

extension PthConversionTests {
  @Test func aRetinaNetPresetOfTheOtherConventionIsRefused() {
    expectConversionError("retinanet.pth", family: .retinaNet, preset: "r50", "retinanet.pth", "torchvision's layout", "--preset r50-torchvision")
  }
}
