import ArgumentParser
import COCO
import COCOEval
import Detectors
import Foundation
import Torch
import Training

/// `detr demo`: the whole path on the built-in data in one command. Synthesizes the shapes dataset,
/// trains the small Deformable DETR on it from scratch, evaluates the best checkpoint with COCO
/// metrics and draws its detections on validation images.
struct DemoCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "demo",
    abstract: "Train the small Deformable DETR on the built-in shapes, evaluate it and draw what it finds.",
    discussion: """
      Writes the run to --output: checkpoints (last/, best/), metrics.jsonl, metrics.csv, evaluations.txt, \
      chart.png, and predictions/ with validation images and their detected boxes. Run it again to continue an interrupted demo.
      """)

  @Option(help: ArgumentHelp("Run folder.", valueName: "DIR"))
  var output = "runs/demo"

  @Option(help: "Images of the synthetic dataset (one in eight is for validation).")
  var images = 2000

  @Option(help: "Side of the synthetic images in pixels.")
  var size = 160

  @Option(help: "Training epochs.")
  var epochs = 7

  @Option(name: .customLong("batch-size"), help: "Images per step.")
  var batchSize = 4

  @Option(name: .customLong("learning-rate"), help: "Base learning rate.")
  var learningRate = 5e-4

  @Option(help: "Seed of initialization, data order and augmentation.")
  var seed: UInt64 = 42

  @Option(help: "Validation images to draw the detections on.")
  var show = 8

  @Option(help: "Draw detections scoring above this (the demo's short training gives scores of about 0.25-0.5).")
  var threshold: Float = 0.25

  @Option(help: deviceHelp)
  var device: Device?

  func validate() throws {
    guard epochs > 0, batchSize > 0, images >= 16 else {
      throw ValidationError("--epochs and --batch-size must be positive and --images at least 16")
    }
    guard show >= 0 else { throw ValidationError("--show must be 0 or more, got \(show)") }
    guard learningRate.isFinite, learningRate > 0, learningRate <= 10 else {
      throw ValidationError("--learning-rate must be a number in (0, 10], got \(learningRate)")
    }
    guard (0...1).contains(threshold) else { throw ValidationError("--threshold must be between 0 and 1, got \(threshold)") }
  }

  func run() throws {
    let start = Date()
    let device = try Device.resolve(self.device)
    let outputURL = URL(fileURLWithPath: output)
    var arguments = [
      "--model", "deformable-detr", "--preset", "small", "--synthetic-images", "\(images)", "--synthetic-size", "\(size)",
      "--synthetic-objects", "medium-large", "--augmentation", "flip", "--epochs", "\(epochs)", "--batch-size", "\(batchSize)", "--learning-rate",
      "\(learningRate)", "--seed", "\(seed)", "--output", output, "--log-every", "10", "--checkpoint-every", "100",
      "--device", device.description,
    ]
    if Trainer.hasCheckpoint(in: outputURL) {
      print("continuing the demo in \(output) (delete the folder to start over)")
      arguments.append("--resume")
    }
    let train = try TrainCommand.parse(arguments)
    try train.run()
    let trained = Date()

    let (imageFolder, _, validationFile, scale) = try train.dataset()
    guard let validationFile else { throw ValidationError("the synthetic dataset has no validation split") }
    let best = outputURL.appendingPathComponent("best")
    let checkpoint = FileManager.default.fileExists(atPath: best.path) ? best : outputURL.appendingPathComponent("last")
    let loaded = try DetectorCheckpoint.load(checkpoint)
    loaded.detector.to(device: device)
    let validation = try DetectionDataset(annotationsFile: validationFile, imageDirectory: imageFolder, policy: DetectionDataset.Policy())
    let loader = DetectionLoader(
      dataset: validation, transform: .scaled(.evaluation, by: scale), batchSize: batchSize, shuffle: false, seed: seed,
      padToMultipleOf: loaded.detector.inputSizeDivisor)
    let result = try DetectorEvaluation.evaluate(
      loaded.detector, loader: loader, categories: loaded.categories, annotationsFile: validationFile)
    let evaluated = Date()

    let drawnFolder = outputURL.appendingPathComponent("predictions")
    try FileManager.default.createDirectory(at: drawnFolder, withIntermediateDirectories: true)
    let evaluationTransform = DETRTransform.scaled(.evaluation, by: scale)
    let predictor = ImagePredictor(
      loaded: loaded, shorterSide: evaluationTransform.evaluationSize, maxSize: evaluationTransform.maxSize, threshold: threshold,
      maxDetections: 100)
    for sample in validation.samples.prefix(show) {
      let (pixels, detections) = try predictor.detect(sample.url, imageId: sample.imageId)
      try predictor.drawn(pixels, detections).write(to: drawnFolder.appendingPathComponent(sample.url.lastPathComponent))
    }
    let drawn = Date()

    print("\nthe best checkpoint (\(checkpoint.lastPathComponent)/) on the \(validation.samples.count) validation images:")
    print(result.summaryText)
    func seconds(_ from: Date, _ to: Date) -> String { String(format: "%.0f s", to.timeIntervalSince(from)) }
    print(
      """

      demo done in \(seconds(start, drawn)): data and training \(seconds(start, trained)), evaluation \(seconds(trained, evaluated)), \
      drawing \(seconds(evaluated, drawn))
      AP50 \(String(format: "%.3f", result.stats[1])), AP \(String(format: "%.3f", result.stats[0]))
      chart:       \(outputURL.appendingPathComponent("chart.png").path)
      predictions: \(drawnFolder.path) (\(Swift.min(show, validation.samples.count)) images, boxes scoring above \(threshold))
      """)
  }
}
