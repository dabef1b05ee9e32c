import COCO
import Detectors
import Foundation
import Testing
import TorchTestSupport
import Training

/// A checkpoint knows the input it was trained at, and predict, evaluate and serve use it; a training
/// run's folder stands for its best (else last) checkpoint; a missing folder says so.
@Suite struct CheckpointInputTests {
  /// EvaluateCommandTests' data and tiny DETR, saved as `run/best` with an input of 96/160 and as
  /// `plain` without one.
  static func setUp() throws -> (root: URL, images: URL, annotations: URL, run: URL, plain: URL) {
    let (root, annotations, images, weights) = try EvaluateCommandTests.setUp()
    let loaded = try DetectorCheckpoint.load(weights)
    let run = root.appendingPathComponent("run")
    try FileManager.default.createDirectory(at: run, withIntermediateDirectories: true)
    // A run folder holds its own config.json (the run's settings) beside its checkpoints.
    try Data(#"{"model": "detr", "settings": {}}"#.utf8).write(to: run.appendingPathComponent("config.json"))
    try DetectorCheckpoint.save(
      loaded.detector, categories: loaded.categories, input: DetectorInput(shorterSide: 96, maxSize: 160), to: run.appendingPathComponent("best"))
    return (root, images, annotations, run, weights)
  }

  @Test func theRecordedInputRoundTrips() throws {
    let (root, _, _, run, plain) = try Self.setUp()
    defer { try? FileManager.default.removeItem(at: root) }
    #expect(try DetectorCheckpoint.load(run.appendingPathComponent("best")).input == DetectorInput(shorterSide: 96, maxSize: 160))
    #expect(try DetectorCheckpoint.load(plain).input == nil)
    #expect(try DetectorCheckpoint.load(plain).preset == nil)
    let named = root.appendingPathComponent("named")
    let loaded = try DetectorCheckpoint.load(plain)
    try DetectorCheckpoint.save(loaded.detector, categories: loaded.categories, preset: "small", to: named)
    #expect(try DetectorCheckpoint.load(named).preset == "small")
    #expect(try DetectorCheckpoint.load(plain).defaultInput == DetectorInput(shorterSide: 800, maxSize: 1333))
    // A shorter side alone keeps the recorded ratio for the longer side's limit.
    #expect(try DetectorCheckpoint.load(run).resolvedInput(shorterSide: 48) == DetectorInput(shorterSide: 48, maxSize: 80))
  }

  @Test func predictUsesTheRecordedInputAndARunFolderItsBestCheckpoint() throws {
    let (root, images, _, run, plain) = try Self.setUp()
    defer { try? FileManager.default.removeItem(at: root) }
    let (recorded, explicit, coco) = (root.appendingPathComponent("a.json"), root.appendingPathComponent("b.json"), root.appendingPathComponent("c.json"))
    let first = try ConvertCommandTests.detr(["predict", "--weights", run.path, "--threshold", "0", "--json", recorded.path, images.path])
    #expect(first.status == 0, "\(first.output)")
    #expect(first.output.contains("\(run.path) is a training run: using its best/ checkpoint"), "\(first.output)")
    #expect(first.output.contains("input: shorter side 96, longer side at most 160 (recorded in the checkpoint; --size overrides)"))
    let second = try ConvertCommandTests.detr([
      "predict", "--weights", plain.path, "--threshold", "0", "--size", "96", "--max-size", "160", "--json", explicit.path, images.path,
    ])
    #expect(second.status == 0 && !second.output.contains("recorded in the checkpoint"), "\(second.output)")
    #expect(try Data(contentsOf: recorded) == Data(contentsOf: explicit), "the recorded input gives what the same flags give")
    let third = try ConvertCommandTests.detr(["predict", "--weights", plain.path, "--threshold", "0", "--json", coco.path, images.path])
    #expect(third.status == 0)
    #expect(try Data(contentsOf: coco) != Data(contentsOf: explicit), "a checkpoint without a record runs at 800 pixels")
  }

  @Test func evaluateUsesTheRecordedInput() throws {
    let (root, images, annotations, run, plain) = try Self.setUp()
    defer { try? FileManager.default.removeItem(at: root) }
    let (recorded, explicit) = (root.appendingPathComponent("a.json"), root.appendingPathComponent("b.json"))
    let first = try ConvertCommandTests.detr([
      "evaluate", "--annotations", annotations.path, "--weights", run.path, "--images", images.path, "--detections-out", recorded.path,
    ])
    #expect(first.status == 0 && first.output.contains("(recorded in the checkpoint; --image-scale overrides)"), "\(first.output)")
    // 96 = 0.12 × 800 and 160 = 0.12 × 1333 (rounded).
    let second = try ConvertCommandTests.detr([
      "evaluate", "--annotations", annotations.path, "--weights", plain.path, "--images", images.path, "--image-scale", "0.12",
      "--detections-out", explicit.path,
    ])
    #expect(second.status == 0, "\(second.output)")
    #expect(try Data(contentsOf: recorded) == Data(contentsOf: explicit))
  }

  @Test func serveDryRunLoadsRunsOnceAndExits() throws {
    let (root, _, _, run, _) = try Self.setUp()
    defer { try? FileManager.default.removeItem(at: root) }
    let result = try ConvertCommandTests.detr(["serve", "--weights", run.path, "--dry-run"])
    #expect(result.status == 0, "\(result.output)")
    #expect(result.output.contains("\"shorter_side\" : 96") && result.output.contains("\"max_size\" : 160"), "\(result.output)")
    #expect(result.output.contains("dry run: one detection on a blank image gave 10 candidates; not listening"))
  }

  @Test func aMissingCheckpointFolderSaysSo() throws {
    let missing = FileManager.default.temporaryDirectory.appendingPathComponent("no-such-run-\(UUID())").path
    let image = FileManager.default.temporaryDirectory.appendingPathComponent("one-\(UUID()).png")
    try Image(width: 32, height: 32).write(to: image)
    defer { try? FileManager.default.removeItem(at: image) }
    for command in [["predict", "--weights", missing, image.path], ["serve", "--weights", missing]] {
      let result = try ConvertCommandTests.detr(command)
      #expect(result.status != 0)
      #expect(result.output.contains("\(missing): does not exist; pass a checkpoint folder"), "\(command[0]): \(result.output)")
    }
  }
}
