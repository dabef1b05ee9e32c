import ArgumentParser
import Foundation
import Testing
import TorchTestSupport

@testable import DETRCommands

/// Bad input to `detr train` is reported before any training, naming the culprit.
@Suite struct TrainCommandTests {
  func message(_ arguments: [String]) -> String {
    do {
      var command = try DETRCommand.parseAsRoot(arguments)
      try withSeededGenerator(0) { try command.run() }
      return "no error"
    } catch {
      return DETRCommand.message(for: error)
    }
  }

  @Test func badFlagsAndFilesNameTheCulprit() throws {
    let root = Self.scratch()
    defer { try? FileManager.default.removeItem(at: root) }
    let annotations = Self.annotations(in: root)
    #expect(message(["train", "--batch-size", "0"]).contains("--batch-size"))
    #expect(message(["train", "--model", "yolo"]).contains("yolo"))
    #expect(message(["train", "--lr-drop-epoch", "0"]).contains("--lr-drop-epoch must be positive"))
    #expect(message(["train", "--ema-decay", "1"]).contains("--ema-decay must lie strictly between 0 and 1"))
    #expect(message(["train", "--ema-decay", "nan"]).contains("--ema-decay must lie strictly between 0 and 1"))
    let badSwitches = message([
      "train", "--model", "sd-detr", "--data", root.path, "--train-annotations", annotations.path, "--set", "task_aware_queries=false",
      "--output", root.appendingPathComponent("sd-detr").path,
    ])
    #expect(badSwitches.contains("box_reference") && badSwitches.contains("sd-detr"), "\(badSwitches)")
    #expect(message(["train", "--preset", "huge"]).contains("presets: r50, r50-single-scale"))
    #expect(message(["train", "--data", "/nonexistent"]).contains("--data and --train-annotations go together"))
    #expect(message(["train", "--data", "/nonexistent", "--train-annotations", "/nonexistent/a.json"]).contains("/nonexistent/a.json"))
    #expect(
      message([
        "train", "--config", "/nonexistent/c.json", "--data", root.path, "--train-annotations",
        annotations.path,
      ]).contains("/nonexistent/c.json"))
    let unknown = message([
      "train", "--data", root.path, "--train-annotations", annotations.path, "--set",
      "transformer.querie=3", "--output", root.appendingPathComponent("unknown-key").path,
    ])
    #expect(unknown.contains("unknown key 'transformer.querie'") && unknown.contains("transformer.queries"))
    let group = message([
      "train", "--data", root.path, "--train-annotations", annotations.path, "--set",
      "loss=3", "--output", root.appendingPathComponent("group-key").path,
    ])
    #expect(group.contains("'loss' is a group"))
    for (family, field) in [("detr", "decoder_heads"), ("deformable-detr", "encoder_heads"), ("conditional-detr", "decoder_heads")] {
      let heads = message([
        "train", "--model", family, "--data", root.path, "--train-annotations", annotations.path, "--set", "transformer.\(field)=3",
        "--output", root.appendingPathComponent("heads-\(family)").path,
      ])
      #expect(heads.contains("transformer.\(field) 3 must be a positive divisor of transformer.hidden_dim"), "\(family): \(heads)")
    }
    let perSide = message([
      "train", "--model", "detr", "--preset", "small", "--data", root.path, "--train-annotations", annotations.path, "--set",
      "transformer.decoder_heads=8", "--set", "transformer.encoder_feed_forward_dim=96", "--max-iterations", "1",
      "--output", root.appendingPathComponent("per-side").path,
    ])
    #expect(!perSide.contains("decoder_heads") && !perSide.contains("unknown key"), "per-side widths are config fields: \(perSide)")
    let resume = message([
      "train", "--data", root.path, "--train-annotations", annotations.path, "--resume",
      "--output", root.appendingPathComponent("resume").path,
    ])
    #expect(resume.contains("has no checkpoint to continue from"))
    let existingRun = root.appendingPathComponent("existing")
    try? FileManager.default.createDirectory(at: existingRun.appendingPathComponent("last"), withIntermediateDirectories: true)
    try? Data("{}".utf8).write(to: existingRun.appendingPathComponent("last/trainer.json"))
    let overwrite = message([
      "train", "--data", root.path, "--train-annotations", annotations.path,
      "--output", existingRun.path,
    ])
    #expect(overwrite.contains("already holds a run; pass --resume"), "a new run never overwrites an old one's checkpoints")
  }

  /// A tiny annotation file whose one image is a file that exists, so the data checks pass.
  static func annotations(in folder: URL) -> URL {
    let image = folder.appendingPathComponent("a.png")
    try? Data([0x89, 0x50, 0x4E, 0x47]).write(to: image)
    let json = """
      {"images": [{"id": 1, "file_name": "\(image.lastPathComponent)", "width": 64, "height": 64}],
       "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 10, 10], "area": 100, "iscrowd": 0}],
       "categories": [{"id": 1, "name": "thing"}]}
      """
    let url = folder.appendingPathComponent("a.json")
    try? json.write(to: url, atomically: true, encoding: .utf8)
    return url
  }

  static func scratch() -> URL {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("train-command-\(UUID())")
    try? FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    return folder
  }
}

/// Numbers out of range, from flags and from `--set`, are refused before any work, naming the field
/// and the allowed range; negative numbers reach their checks instead of reading as options.
@Suite struct NumberValidationTests {
  func message(_ arguments: [String]) -> String {
    do {
      var command = try DETRCommand.parseAsRoot(DETRCommand.normalizedArguments(arguments))
      try withSeededGenerator(0) { try command.run() }
      return "no error"
    } catch {
      return DETRCommand.message(for: error)
    }
  }

  @Test func negativeNumbersReachTheirChecks() {
    #expect(DETRCommand.normalizedArguments(["train", "--learning-rate", "-1", "--epochs", "3", "-h"]) == ["train", "--learning-rate=-1", "--epochs", "3", "-h"])
    #expect(DETRCommand.normalizedArguments(["predict", "--threshold", "-inf"]) == ["predict", "--threshold=-inf"])
    #expect(message(["train", "--learning-rate", "-1"]).contains("--learning-rate must be a number in (0, 10], got -1.0"))
    #expect(message(["train", "--batch-size", "-2"]).contains("--batch-size must be between 1 and 4096, got -2"))
  }

  @Test(arguments: [
    (["train", "--learning-rate", "nan"], "--learning-rate must be a number in (0, 10]"),
    (["train", "--learning-rate", "0"], "--learning-rate must be a number in (0, 10]"),
    (["train", "--learning-rate", "1e9"], "--learning-rate must be a number in (0, 10]"),
    (["train", "--image-scale", "0"], "--image-scale must be between 0.02 and 8"),
    (["train", "--image-scale", "inf"], "--image-scale must be between 0.02 and 8"),
    (["train", "--batch-size", "100000"], "--batch-size must be between 1 and 4096"),
    (["predict", "--weights", "w", "x.jpg", "--size", "0"], "--size must be between 16 and 8192"),
    (["evaluate", "--annotations", "a.json", "--detections", "d.json", "--image-scale", "-3"], "--image-scale must be between 0.02 and 8"),
    (["benchmark", "--threads", "0"], "--threads must be between 1 and 1024"),
    (["demo", "--learning-rate", "-0.1"], "--learning-rate must be a number in (0, 10]"),
  ])
  func flagsOutOfRangeAreNamed(arguments: [String], expected: String) {
    let text = message(arguments)
    #expect(text.contains(expected), "\(arguments): \(text)")
  }

  @Test(arguments: [
    ("transformer.encoder_layers=-1", "transformer.encoder_layers must be between 0 and 100, got -1"),
    ("transformer.decoder_layers=0", "transformer.decoder_layers must be between 1 and 100, got 0"),
    ("transformer.queries=0", "transformer.queries must be between 1 and 100000, got 0"),
    ("transformer.dropout=1.5", "transformer.dropout must lie in [0, 1), got 1.5"),
    ("transformer.hidden_dim=33", "transformer.hidden_dim must be an even number between 2 and 8192, got 33"),
    ("transformer.heads=5", "transformer.heads 5 must be a positive divisor of transformer.hidden_dim"),
    ("backbone.blocks_per_stage=[1,0,1,1]", "backbone.blocks_per_stage must be between 1 and 100 each"),
    ("backbone.stage_channels=[8,16]", "must list 4 stages"),
  ])
  func configValuesOutOfRangeAreNamed(assignment: String, expected: String) throws {
    let root = TrainCommandTests.scratch()
    defer { try? FileManager.default.removeItem(at: root) }
    let annotations = TrainCommandTests.annotations(in: root)
    let text = message([
      "train", "--model", "detr", "--preset", "small", "--data", root.path, "--train-annotations", annotations.path, "--set", assignment,
      "--output", root.appendingPathComponent("run").path,
    ])
    #expect(text.contains(expected), "\(assignment): \(text)")
  }
}

extension TrainCommandTests {
  @Test func configFilesAndFoldersGiveMessagesAUserCanActOn() throws {
    let root = Self.scratch()
    defer { try? FileManager.default.removeItem(at: root) }
    let annotations = Self.annotations(in: root)
    let config = root.appendingPathComponent("bad.json")
    try #"{"backbone": {"blocks_per_stage": [1,1,1,1], "stem_channels": 8, "stage_channels": [8,16,32,64], "bottleneck": false}, "transformer": {"hidden_dim": 32, "heads": 4, "encoder_layers": 1, "decoder_layers": 1, "feed_forward_dim": 32, "dropout": 0, "queries": "ten"}}"#
      .write(to: config, atomically: true, encoding: .utf8)
    let decoding = message([
      "train", "--model", "detr", "--config", config.path, "--data", root.path, "--train-annotations", annotations.path, "--output",
      root.appendingPathComponent("run").path,
    ])
    #expect(decoding.contains("is not a valid detr config: transformer.queries is not a number"), "\(decoding)")
    #expect(!decoding.contains("DecodingError") && !decoding.contains("codingPath"), "no Swift error dump: \(decoding)")

    let occupied = root.appendingPathComponent("occupied")
    try FileManager.default.createDirectory(at: occupied, withIntermediateDirectories: true)
    try Data("mine".utf8).write(to: occupied.appendingPathComponent("config.json.bak"))
    let mixed = message(["train", "--data", root.path, "--train-annotations", annotations.path, "--output", occupied.path])
    #expect(mixed.contains("holds files that are not a run's (config.json.bak)"), "\(mixed)")

    // The loader's advice names flags that exist.
    let badAnnotations = root.appendingPathComponent("unknown.json")
    try #"{"images": [{"id": 1, "file_name": "a.png", "width": 64, "height": 64}], "annotations": [{"id": 1, "image_id": 9, "category_id": 1, "bbox": [1, 1, 5, 5], "area": 25, "iscrowd": 0}], "categories": [{"id": 1, "name": "thing"}]}"#
      .write(to: badAnnotations, atomically: true, encoding: .utf8)
    let advice = message(["train", "--data", root.path, "--train-annotations", badAnnotations.path, "--output", root.appendingPathComponent("r2").path])
    #expect(advice.contains("--skip-invalid-annotations"), "\(advice)")
    #expect(try DETRCommand.parseAsRoot(["train", "--skip-invalid-annotations", "--skip-missing-images"]) is TrainCommand)
  }
}

extension TrainCommandTests {
  /// A training file with no images (or none with annotations) stops before any training.
  @Test func aTrainingFileWithNothingToTrainOnIsRefused() throws {
    let root = Self.scratch()
    defer { try? FileManager.default.removeItem(at: root) }
    let empty = root.appendingPathComponent("empty.json")
    try #"{"images": [], "annotations": [], "categories": [{"id": 1, "name": "thing"}]}"#.write(to: empty, atomically: true, encoding: .utf8)
    let text = message(["train", "--data", root.path, "--train-annotations", empty.path, "--output", root.appendingPathComponent("run").path])
    #expect(text.contains("\(empty.path) has no images with annotations to train on"), "\(text)")
    #expect(!FileManager.default.fileExists(atPath: root.appendingPathComponent("run/last").path), "no untrained checkpoint is written")
  }

  @Test func imagesFarFromDETRsSizeTrainAtTheirOwn() {
    let small = TrainCommand.automaticScale(shorterSides: [120, 128, 130], resizedTo: 800)
    #expect(small?.scale == 0.16)
    #expect(small?.note == "training near the images' own size: their shorter sides are about 128 pixels, and DETR's 800 would scale them ×6.2; so --image-scale 0.16 (pass --image-scale 1 for DETR's size)")
    #expect(TrainCommand.automaticScale(shorterSides: [480, 640, 500], resizedTo: 800) == nil, "COCO-like images keep DETR's recipe")
    #expect(TrainCommand.automaticScale(shorterSides: [3000, 3000], resizedTo: 800)?.scale == 3.75)
    #expect(TrainCommand.automaticScale(shorterSides: [], resizedTo: 800) == nil)
  }
}
