import COCO
import Detection
import Detectors
import Foundation
import Testing
import Torch
import TorchNN
import TorchTestSupport

@testable import Training

/// A run stopped at a checkpoint and resumed ends with the same weights and losses as a run never stopped.
@Suite(.serialized) struct ResumeTests {
  static let data: URL = {
    let folder = temporaryFolderRemovedAtExit(named: "resume-data")
    try! SyntheticShapes.generate(to: folder, images: 16, size: 96, seed: 2)
    return folder
  }()

  func makeTrainer(output: URL, kind: ModelKind = .detr, emaDecay: Double? = nil) throws -> Trainer {
    let dataset = try DetectionDataset(
      annotationsFile: Self.data.appendingPathComponent("annotations/train.json"),
      imageDirectory: Self.data.appendingPathComponent("images"))
    var transformer = TrainingStepTests.tinyTransformer
    transformer.dropout = 0.1  // dropout draws random numbers: the RNG state must be restored too
    let detector: any Detector
    if kind == .dino {
      // DINO also draws its denoising noise in every forward pass.
      var config = DINOConfig.small
      (config.backbone, config.transformer, config.classCount) = (TrainingStepTests.tinyBackbone, transformer, dataset.categories.count)
      config.denoisingQueries = 10
      detector = DINOModel(config: config)
    } else {
      var config = DETRConfig()
      (config.backbone, config.transformer, config.classCount) = (TrainingStepTests.tinyBackbone, transformer, dataset.categories.count)
      detector = DETRModel(config: config)
    }
    var recipe = TrainingRecipe.reference(for: kind)
    (recipe.epochs, recipe.learningRateDropEpoch, recipe.learningRate) = (2, 1, 1e-3)
    recipe.emaDecay = emaDecay
    let loader = DetectionLoader(dataset: dataset, transform: .scaled(.training, by: 0.1), batchSize: 2, shuffle: true, seed: 5)
    let trainer = try Trainer(
      detector: detector, categories: dataset.categories, recipe: recipe, trainLoader: loader, validation: nil, output: output)
    (trainer.checkpointEvery, trainer.logEvery) = (3, 1)
    return trainer
  }

  @Test func runConfigRecordsArchitectureRecipeAugmentationAndCategories() throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("run-config-\(UUID())")
    defer { try? FileManager.default.removeItem(at: root) }
    let trainer = try withSeededGenerator(1) { try makeTrainer(output: root) }
    try trainer.writeRunConfig()
    let object = try #require(
      try JSONSerialization.jsonObject(with: Data(contentsOf: root.appendingPathComponent("config.json"))) as? [String: Any])
    #expect(object["model"] as? String == "detr" && object["augmentation"] as? String == "detr")
    let recipe = try #require(object["recipe"] as? [String: Any])
    #expect(recipe["learning_rate"] as? Double == 1e-3 && recipe["epochs"] as? Int == 2)
    let config = try #require(object["config"] as? [String: Any])
    #expect(config["class_count"] as? Int == trainer.categories.count)
    #expect(object["categories"] != nil)
  }

  @Test(arguments: [ModelKind.detr, .dino])
  func resumedEqualsUninterrupted(kind: ModelKind) throws {
    // Bit-for-bit equality needs the same thread count throughout (a reduction split otherwise rounds
    // otherwise); the random draws are the run's own through withSeededGenerator.
    try withExclusiveThreadCount { try compareResumedWithUninterrupted(kind: kind) }
  }

  func compareResumedWithUninterrupted(kind: ModelKind) throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("resume-\(UUID())")
    defer { try? FileManager.default.removeItem(at: root) }
    let straight = try withSeededGenerator(9) { () throws -> Trainer in
      let trainer = try makeTrainer(output: root.appendingPathComponent("straight"), kind: kind)
      try trainer.run(progress: { _, _ in })
      return trainer
    }
    try withSeededGenerator(9) {
      let first = try makeTrainer(output: root.appendingPathComponent("interrupted"), kind: kind)
      first.maxIterations = 9  // stops mid-epoch 2, after the checkpoint at step 9
      try first.run(progress: { _, _ in })
    }
    let resumed = try withSeededGenerator(123) { () throws -> Trainer in
      let trainer = try makeTrainer(output: root.appendingPathComponent("interrupted"), kind: kind)
      #expect(try trainer.resume())
      #expect(trainer.position.step == 9)
      try trainer.run(progress: { _, _ in })
      return trainer
    }
    #expect(resumed.position == straight.position)
    for ((key, a), (_, b)) in zip(straight.detector.stateDict(), resumed.detector.stateDict()) {
      expectClose(b, a, relative: 0, absolute: 1e-6, key)
    }
    let metrics = { (run: String) in try String(contentsOf: root.appendingPathComponent("\(run)/metrics.jsonl"), encoding: .utf8) }
    let losses = { (text: String) in
      text.split(separator: "\n").map { line in
        ((try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any])?["loss"] as? Double ?? -1
      }
    }
    let (a, b) = (losses(try metrics("straight")), losses(try metrics("interrupted")))
    #expect(a.count == b.count && a.count == 14, "2 epochs of 7 batches")
    for (x, y) in zip(a, b) { #expect(abs(x - y) <= 1e-6 * max(1, abs(x)), "losses step by step: \(x) vs \(y)") }
  }
}
