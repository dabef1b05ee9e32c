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

/// `--batch-size` changes no detection: only images of one resized size share a forward pass.
@Suite struct BatchedInferenceTests {
  /// The setup's 96×96 images with every third one resized to 120×96, so that sizes mix.
  static func mixedSizes() throws -> (root: URL, annotations: URL, images: URL, weights: URL) {
    let setup = try EvaluateCommandTests.setUp()
    var annotations = try JSONSerialization.jsonObject(with: Data(contentsOf: setup.annotations)) as! [String: Any]
    var infos = annotations["images"] as! [[String: Any]]
    for index in infos.indices where index % 3 == 0 {
      let file = setup.images.appendingPathComponent(infos[index]["file_name"] as! String)
      try Image(contentsOf: file).resized(width: 120, height: 96).write(to: file)
      infos[index]["width"] = 120
    }
    annotations["images"] = infos
    // Boxes stay in the annotated (new) size's frame well enough for a check of equality.
    try JSONSerialization.data(withJSONObject: annotations).write(to: setup.annotations)
    return setup
  }

  static func predicted(_ arguments: [String], to file: URL) throws -> [[String: Any]] {
    var command = try DETRCommand.parseAsRoot(["predict", "--json", file.path, "--threshold", "0", "--size", "96", "--max-size", "160"] + arguments)
    try command.run()
    return try JSONSerialization.jsonObject(with: Data(contentsOf: file)) as! [[String: Any]]
  }

  @Test func predictInBatchesGivesTheDetectionsOfOneImageAtATime() throws {
    let (root, _, images, weights) = try Self.mixedSizes()
    defer { try? FileManager.default.removeItem(at: root) }
    let alone = try Self.predicted(["--weights", weights.path, "--batch-size", "1", images.path], to: root.appendingPathComponent("alone.json"))
    let batched = try Self.predicted(
      ["--weights", weights.path, "--batch-size", "4", images.path], to: root.appendingPathComponent("batched.json"))
    #expect(alone.count == batched.count && alone.count == 8 * 10)
    for (a, b) in zip(alone, batched) {
      #expect(a["image_id"] as? Int == b["image_id"] as? Int && a["category_id"] as? Int == b["category_id"] as? Int)
      #expect(Swift.abs((a["score"] as! Double) - (b["score"] as! Double)) < 1e-5)
      #expect(zip(a["bbox"] as! [Double], b["bbox"] as! [Double]).allSatisfy { Swift.abs($0 - $1) < 1e-3 })
    }
  }

  @Test func evaluateInBatchesGivesTheNumbersOfOneImageAtATime() throws {
    let (root, annotations, images, weights) = try Self.mixedSizes()
    defer { try? FileManager.default.removeItem(at: root) }
    func evaluated(_ batchSize: Int) throws -> (stats: [Double], detections: [[String: Any]]) {
      let (json, detections) = (root.appendingPathComponent("eval\(batchSize).json"), root.appendingPathComponent("dets\(batchSize).json"))
      var command = try DETRCommand.parseAsRoot([
        "evaluate", "--annotations", annotations.path, "--weights", weights.path, "--images", images.path, "--image-scale", "0.12",
        "--batch-size", "\(batchSize)", "--json", json.path, "--detections-out", detections.path,
      ])
      try command.run()
      let report = try JSONSerialization.jsonObject(with: Data(contentsOf: json)) as! [String: Any]
      return (report["stats"] as! [Double], try JSONSerialization.jsonObject(with: Data(contentsOf: detections)) as! [[String: Any]])
    }
    let (alone, batched) = (try evaluated(1), try evaluated(8))
    #expect(zip(alone.stats, batched.stats).allSatisfy { Swift.abs($0 - $1) < 1e-9 }, "\(alone.stats) vs \(batched.stats)")
    #expect(alone.detections.count == batched.detections.count && !alone.detections.isEmpty)
    #expect(alone.detections.map { $0["image_id"] as! Int } == batched.detections.map { $0["image_id"] as! Int }, "results in the images' order")
    for (a, b) in zip(alone.detections, batched.detections) {
      #expect(Swift.abs((a["score"] as! Double) - (b["score"] as! Double)) < 1e-5)
    }
  }
}
