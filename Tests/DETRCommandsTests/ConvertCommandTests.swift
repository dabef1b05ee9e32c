import COCO
import Detection
import Detectors
import Foundation
import Testing
import Torch
import TorchTestSupport
import Training

/// `detr convert` (the real process) on checkpoints saved by torch with the official repositories' code
/// (Scripts/goldens/make_official_pth_fixtures.py): the converted folder detects what the official model detected.
@Suite struct ConvertCommandTests {
  static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/official_pth")

  /// Runs `detr` with `arguments` (in `folder`, with `environment` added) and returns its exit status and everything it printed.
  static func detr(_ arguments: [String], in folder: URL? = nil, environment: [String: String] = [:]) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = KillAndResumeTests.detr
    process.arguments = arguments
    if let folder { process.currentDirectoryURL = folder }
    if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new } }
    let pipe = Pipe()
    (process.standardOutput, process.standardError) = (pipe, pipe)
    try process.run()
    let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    return (process.terminationStatus, output)
  }

  /// The fixtures' backbone and transformer: see the golden script.
  static let backbone = BackboneConfig(blocksPerStage: [1, 1, 1, 1], stemChannels: 8, stageChannels: [8, 16, 32, 64], bottleneck: false)
  static let transformer = TransformerSettings(hiddenDim: 32, heads: 4, encoderLayers: 1, decoderLayers: 2, feedForwardDim: 64, dropout: 0, queries: 20)

  static func configJSON(_ family: ModelKind) throws -> Data {
    switch family {
    case .detr:
      var config = DETRConfig()
      (config.backbone, config.transformer, config.classCount) = (backbone, transformer, 5)
      return try JSONEncoder().encode(config)
    case .conditionalDETR:
      var config = ConditionalDETRConfig()
      (config.backbone, config.transformer, config.classCount) = (backbone, transformer, 5)
      return try JSONEncoder().encode(config)
    default:
      var config = DeformableDETRConfig()
      (config.backbone, config.transformer, config.classCount) = (backbone, transformer, 5)
      (config.encoderPoints, config.decoderPoints, config.boxRefinement, config.twoStage) = (2, 2, true, true)
      return try JSONEncoder().encode(config)
    }
  }

  @Test(arguments: [("detr", ModelKind.detr), ("conditional_detr", .conditionalDETR), ("deformable_detr", .deformableDETR)])
  func anOfficialCheckpointConvertsAndDetectsAsTheOfficialModel(fixture: String, family: ModelKind) throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("convert-\(UUID())")
    try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: root) }
    let configFile = root.appendingPathComponent("config.json")
    try Self.configJSON(family).write(to: configFile)
    let source = Self.fixtures.appendingPathComponent("\(fixture)/checkpoint.pth")
    let output = root.appendingPathComponent("converted")
    let result = try Self.detr(["convert", source.path, "--family", family.rawValue, "--config", configFile.path, "--output", output.path])
    #expect(result.status == 0, "\(result.output)")
    #expect(result.output.contains("converted") && result.output.contains("5 classes"), "\(result.output)")

    let loaded = try DetectorCheckpoint.load(output)
    #expect(loaded.detector.kind == family && loaded.categories.count == 5)
    let golden = try Goldens(Self.fixtures.appendingPathComponent("\(fixture)/golden.safetensors"))
    let sizes = [(height: 96, width: 128), (height: 80, width: 112)]
    let batch = DetectorBatch(images: golden["images"], paddingMask: golden["mask"], imageSizes: sizes, outputSizes: sizes)
    let detections = withInferenceMode { loaded.detector.detect(batch) }
    for (index, image) in detections.enumerated() {
      expectClose(Tensor(image.scores), golden["detections.\(index).scores"], relative: 0, absolute: 1e-4, "\(fixture) scores \(index)")
      #expect(image.labels == golden["detections.\(index).labels"].asArray(Int.self), "\(fixture) labels \(index)")
      expectClose(
        Tensor(image.boxes.flatMap { $0.map(Float.init) }).view(-1, 4), golden["detections.\(index).boxes"], relative: 1e-5, absolute: 1e-4,
        "\(fixture) boxes \(index)")
    }
  }
}

extension ConvertCommandTests {
  static let pickles = fixtures.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("TorchTests/Goldens/pytorch_files")

  @Test func badInputsGetOneClearErrorAndWriteNothing() throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("convert-errors-\(UUID())")
    try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: root) }
    let detr = Self.fixtures.appendingPathComponent("detr/checkpoint.pth").path
    let occupied = root.appendingPathComponent("occupied")
    try FileManager.default.createDirectory(at: occupied, withIntermediateDirectories: true)
    try Data("keep me".utf8).write(to: occupied.appendingPathComponent("notes.txt"))
    let fresh = root.appendingPathComponent("fresh").path
    let cases: [([String], [String])] = [
      (["convert", Self.pickles.appendingPathComponent("runs_code.pth").path, "--family", "detr", "--output", fresh], ["runs_code.pth", "refused"]),
      (["convert", detr, "--family", "detr", "--output", occupied.path], ["--output", "already holds files"]),
      (["convert", detr, "--family", "detr", "--output", detr], ["--output", "overwrite the source"]),
      (["convert", detr, "--family", "detr", "--preset", "r18", "--output", fresh], ["--preset r18", "r50, r101, small"]),
      (["convert", detr, "--family", "deformable-detr", "--output", fresh], ["does not look like a deformable-detr checkpoint"]),
      (["convert", detr, "--output", fresh], ["--family"]),
      (["convert", detr, "--family", "detr", "--output", fresh], ["5 classes", "--config"]),
      (["convert", root.appendingPathComponent("nothing.pth").path, "--family", "detr", "--output", fresh], ["nothing.pth", "does not exist"]),
    ]
    for (arguments, parts) in cases {
      let result = try Self.detr(arguments)
      #expect(result.status != 0, "\(arguments)")
      #expect(parts.allSatisfy { result.output.contains($0) }, "\(arguments): \(result.output)")
      #expect(!result.output.contains("Fatal error") && result.output.split(separator: "\n").count <= 4, "\(arguments): \(result.output)")
    }
    #expect(!FileManager.default.fileExists(atPath: fresh))
    #expect(try String(contentsOf: occupied.appendingPathComponent("notes.txt"), encoding: .utf8) == "keep me")
    // The refused pickle would have created this in the working directory had it run.
    #expect(!FileManager.default.fileExists(atPath: FileManager.default.currentDirectoryPath + "/swift-detr-pickle-executed"))
  }

  @Test func aTransformersFolderConvertsToTheSameDetector() throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("convert-hf-\(UUID())")
    defer { try? FileManager.default.removeItem(at: root) }
    let source = Self.fixtures.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
      .appendingPathComponent("DetectorsTests/Fixtures/deformable_two_stage")
    let output = root.appendingPathComponent("converted")
    let result = try Self.detr(["convert", source.path, "--output", output.path])
    #expect(result.status == 0 && result.output.contains("transformers layout"), "\(result.output)")
    let direct = try DetectorCheckpoint.load(source)
    let converted = try DetectorCheckpoint.load(output)
    #expect(converted.detector.kind == .deformableDETR && converted.categories == direct.categories)
    let mine = Dictionary(uniqueKeysWithValues: converted.detector.stateDict().map { ($0.key, $0.tensor) })
    for (key, tensor) in direct.detector.stateDict() {
      #expect(mine[key].map { ($0 .== tensor).all().item(Bool.self) } == true, "\(key)")
    }
    let wrongFamily = try Self.detr(["convert", source.path, "--family", "detr", "--output", root.appendingPathComponent("x").path])
    #expect(wrongFamily.status != 0 && wrongFamily.output.contains("not detr"), "\(wrongFamily.output)")
  }
}
