import COCO
import Foundation
import Testing
import Torch
import TorchTestSupport
import Training

/// `detr train --init-from` (the real process) fine-tunes a checkpoint onto a dataset with other
/// classes: the weights that fit are loaded, the class head that does not is reported and trained anew.
@Suite struct InitFromTests {
  /// Runs `detr train` with `arguments` and returns its exit status and everything it printed.
  static func train(_ arguments: [String]) throws -> (status: Int32, output: String) {
    try ConvertCommandTests.detr(["train"] + arguments)
  }

  /// `source` with only the annotations and categories of the first two categories.
  static func twoClasses(of source: URL, to destination: URL) throws {
    var json = try JSONSerialization.jsonObject(with: Data(contentsOf: source)) as! [String: Any]
    let categories = (json["categories"] as! [[String: Any]]).prefix(2)
    let kept = Set(categories.map { $0["id"] as! Int })
    json["categories"] = Array(categories)
    json["annotations"] = (json["annotations"] as! [[String: Any]]).filter { kept.contains($0["category_id"] as! Int) }
    try JSONSerialization.data(withJSONObject: json).write(to: destination)
  }

  @Test func fineTunesOntoOtherClassesAndReportsTheKeysNotLoaded() throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("init-from-\(UUID())")
    defer { try? FileManager.default.removeItem(at: root) }
    try SyntheticShapes.generate(to: root.appendingPathComponent("data"), images: 16, size: 96, seed: 5)
    let annotations = root.appendingPathComponent("data/annotations/train.json")
    let common = [
      "--model", "detr", "--config", try KillAndResumeTests.tinyConfig(in: root).path, "--data",
      root.appendingPathComponent("data/images").path, "--image-scale", "0.1", "--epochs", "1", "--batch-size", "2", "--seed", "1",
    ]
    let source = try Self.train(common + ["--train-annotations", annotations.path, "--output", root.appendingPathComponent("source").path])
    #expect(source.status == 0, "\(source.output)")

    let twoClasses = root.appendingPathComponent("two-classes.json")
    try Self.twoClasses(of: annotations, to: twoClasses)
    let sourceCheckpoint = root.appendingPathComponent("source/last")
    let tuned = try Self.train(
      common + [
        "--train-annotations", twoClasses.path, "--init-from", sourceCheckpoint.path, "--output", root.appendingPathComponent("tuned").path,
      ])
    #expect(tuned.status == 0, "\(tuned.output)")
    #expect(tuned.output.contains("initialized"), "the load is reported: \(tuned.output)")
    #expect(
      tuned.output.contains("class_embed.weight: expected shape [3, 32], found [7, 32]"),
      "the class head (2 classes + no object, was 6 + 1) is named as not loaded: \(tuned.output)")

    let before = try DetectorCheckpoint.load(sourceCheckpoint)
    let after = try DetectorCheckpoint.load(root.appendingPathComponent("tuned/last"))
    #expect(before.categories.count == 6 && after.categories.count == 2)
    let (old, new) = (
      Dictionary(uniqueKeysWithValues: before.detector.stateDict().map { ($0.key, $0.tensor) }),
      Dictionary(uniqueKeysWithValues: after.detector.stateDict().map { ($0.key, $0.tensor) })
    )
    #expect(new["class_embed.weight"]?.shape == [3, 32])
    // The stem is frozen when fine-tuning, so it still holds the source's weights exactly.
    let stem = "backbone.0.body.conv1.weight"
    expectClose(new[stem]!, old[stem]!, relative: 0, absolute: 0, "the stem came from the source checkpoint")

    let wrongFamily = try Self.train(
      [
        "--model", "deformable-detr", "--preset", "small", "--data", root.appendingPathComponent("data/images").path,
        "--train-annotations", twoClasses.path, "--init-from", sourceCheckpoint.path, "--output", root.appendingPathComponent("wrong").path,
      ])
    #expect(wrongFamily.status != 0)
    #expect(wrongFamily.output.contains("holds a detr model; this run trains deformable-detr"), "\(wrongFamily.output)")
  }
}
