import ArgumentParser
import COCO
import Detectors
import Foundation
import Testing
import TorchTestSupport
import Training

@testable import DETRCommands

/// `detr evaluate`: its outputs never replace inputs or earlier results silently, and a checkpoint that
/// does not know the ground truth's categories is refused instead of scoring 0.
@Suite struct EvaluateCommandTests {
  func evaluate(_ arguments: [String]) -> String? {
    do {
      var command = try DETRCommand.parseAsRoot(["evaluate"] + arguments)
      try withSeededGenerator(0) { try command.run() }
      return nil
    } catch {
      return DETRCommand.message(for: error)
    }
  }

  /// Synthetic data and an untrained tiny DETR checkpoint with `categories`.
  static func setUp(categories: CategoryMap? = nil) throws -> (root: URL, annotations: URL, images: URL, weights: URL) {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("evaluate-\(UUID())")
    try SyntheticShapes.generate(to: root.appendingPathComponent("data"), images: 8, size: 96, seed: 3)
    let annotations = root.appendingPathComponent("data/annotations/val.json")
    let dataset = try DetectionDataset(annotationsFile: annotations, imageDirectory: root.appendingPathComponent("data/images"))
    var config = DETRConfig()
    config.backbone = BackboneConfig(blocksPerStage: [1, 1, 1, 1], stemChannels: 8, stageChannels: [8, 16, 32, 64], bottleneck: false)
    config.transformer = TransformerSettings(hiddenDim: 32, heads: 4, encoderLayers: 1, decoderLayers: 1, feedForwardDim: 64, dropout: 0, queries: 10)
    let map = categories ?? dataset.categories
    config.classCount = map.count
    let weights = root.appendingPathComponent("weights")
    try DetectorCheckpoint.save(withSeededGenerator(0) { DETRModel(config: config) }, categories: map, to: weights)
    return (root, annotations, root.appendingPathComponent("data/images"), weights)
  }

  @Test func aCheckpointRunsAndItsNumbersAreWritten() throws {
    let (root, annotations, images, weights) = try Self.setUp()
    defer { try? FileManager.default.removeItem(at: root) }
    let json = root.appendingPathComponent("eval.json")
    let arguments = ["--annotations", annotations.path, "--weights", weights.path, "--images", images.path, "--image-scale", "0.12", "--json", json.path]
    #expect(evaluate(arguments) == nil)
    let report = try JSONSerialization.jsonObject(with: Data(contentsOf: json)) as! [String: Any]
    #expect((report["stats"] as? [Double])?.count == 12)
    #expect(evaluate(arguments)?.contains("already exists; pass --overwrite") == true)
    #expect(evaluate(arguments + ["--overwrite"]) == nil)
  }

  @Test func outputsNeverReplaceInputs() throws {
    let (root, annotations, images, weights) = try Self.setUp()
    defer { try? FileManager.default.removeItem(at: root) }
    let before = try Data(contentsOf: annotations)
    let base = ["--annotations", annotations.path, "--weights", weights.path, "--images", images.path, "--image-scale", "0.12"]
    #expect(evaluate(base + ["--json", annotations.path, "--overwrite"])?.contains("is an input of this evaluation") == true)
    #expect(evaluate(base + ["--json", weights.appendingPathComponent("config.json").path, "--overwrite"])?.contains("lies in the input folder") == true)
    #expect(evaluate(base + ["--detections-out", images.appendingPathComponent("x.json").path])?.contains("lies in the input folder") == true)
    #expect(try Data(contentsOf: annotations) == before)
  }

  @Test func aCheckpointOfOtherCategoriesIsRefusedByName() throws {
    let other = CategoryMap(entries: [.init(id: 40, name: "kite"), .init(id: 41, name: "skateboard")])
    let (root, annotations, images, weights) = try Self.setUp(categories: other)
    defer { try? FileManager.default.removeItem(at: root) }
    let message = evaluate(["--annotations", annotations.path, "--weights", weights.path, "--images", images.path, "--image-scale", "0.12"])
    #expect(message?.contains("does not know 6 categories") == true && message?.contains("1 rectangle") == true, "\(message ?? "")")
  }
}
