import ArgumentParser
import COCO
import Detectors
import Foundation
import Torch
import Training

/// `detr pretrain-backbone`: pretrains a family's ResNet backbone on the built-in shapes'
/// classification task and writes weights that `detr train --backbone-weights` reads, the
/// small-scale stand-in for the ImageNet weights the reference recipes start from.
struct PretrainBackboneCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "pretrain-backbone",
    abstract: "Pretrain a detector's ResNet backbone on a classification task made from the built-in shapes.",
    discussion: """
      The task: square crops of freshly rendered shapes images (other images than any detection set's), each \
      centred on one object and labelled with its shape, or showing only background (7 classes), resized to \
      --crop-size. The network trains with batch norm, SGD (momentum 0.9, weight decay 1e-4 on the weights), \
      warmup then cosine decay, and horizontal flips. Writes --output (a torchvision-layout .safetensors with \
      the classifier as fc.*) and beside it a .json with the settings and each epoch's accuracy on held-out crops. \
      Then: detr train --model M --preset P --backbone-weights FILE.
      """)

  @Option(help: "The detector family whose backbone to pretrain.")
  var model: ModelKind = .detr

  @Option(help: "A preset of the family; its backbone is trained.")
  var preset = "small"

  @Option(help: ArgumentHelp("An architecture config JSON of the family, instead of a preset.", valueName: "FILE.json"))
  var config: String?

  @Option(name: .customLong("set"), help: ArgumentHelp("Override a config field, e.g. backbone.stage_channels=[32,64,128,256] (repeatable).", valueName: "key=value"))
  var overrides: [String] = []

  @Option(help: ArgumentHelp("Where to write the weights.", valueName: "FILE.safetensors"))
  var output = "runs/backbone/shapes.safetensors"

  @Option(help: "Rendered images the training crops are cut from (about 3.5 crops each).")
  var images = BackbonePretraining.Settings().images

  @Option(name: .customLong("image-size"), help: "Side of the rendered images in pixels.")
  var imageSize = BackbonePretraining.Settings().imageSize

  @Option(name: .customLong("crop-size"), help: "Side of the crops the network sees.")
  var cropSize = BackbonePretraining.Settings().cropSize

  @Option(help: "Training epochs.")
  var epochs = BackbonePretraining.Settings().epochs

  @Option(name: .customLong("batch-size"), help: "Crops per step.")
  var batchSize = BackbonePretraining.Settings().batchSize

  @Option(name: .customLong("learning-rate"), help: "Peak learning rate.")
  var learningRate = BackbonePretraining.Settings().learningRate

  @Option(help: "Seed of the rendered images, the initialization and the order.")
  var seed = BackbonePretraining.Settings().seed

  @Option(help: deviceHelp)
  var device: Device?

  @Option(help: "Intra-op threads (default: libtorch's choice).")
  var threads: Int?

  func validate() throws {
    if config == nil { try ModelChoice.checkPreset(preset, of: model) }
    guard images >= 10, epochs > 0, batchSize > 1 else {
      throw ValidationError("--images must be at least 10, --epochs positive and --batch-size at least 2 (batch norm)")
    }
    guard imageSize >= 64, (16...1024).contains(cropSize) else {
      throw ValidationError("--image-size must be at least 64 and --crop-size between 16 and 1024, got \(imageSize) and \(cropSize)")
    }
    guard learningRate.isFinite, learningRate > 0, learningRate <= 10 else {
      throw ValidationError("--learning-rate must be a number in (0, 10], got \(learningRate)")
    }
    if let threads, !(1...1024).contains(threads) { throw ValidationError("--threads must be between 1 and 1024, got \(threads)") }
    guard output.hasSuffix(".safetensors") else { throw ValidationError("--output must name a .safetensors file, got \(output)") }
  }

  func run() throws {
    if let threads { Torch.threadCount = threads }
    let device = try Device.resolve(device)
    let backbone = try backboneConfig()
    let outputURL = URL(fileURLWithPath: output)
    do {
      try FileManager.default.createDirectory(at: outputURL.deletingLastPathComponent(), withIntermediateDirectories: true)
    } catch {
      throw CommandFailure("--output \(output): its folder cannot be created (\(error.localizedDescription))")
    }
    var settings = BackbonePretraining.Settings()
    (settings.images, settings.imageSize, settings.cropSize, settings.epochs) = (images, imageSize, cropSize, epochs)
    (settings.batchSize, settings.learningRate, settings.seed) = (batchSize, learningRate, seed)
    let pretraining = BackbonePretraining(backbone: backbone, settings: settings, device: device)
    print(
      "pretraining the \(model.rawValue) \(config ?? preset) backbone (\(describe(backbone))) on \(device): "
        + "crops of \(images) rendered \(imageSize)×\(imageSize) images at \(cropSize)×\(cropSize), \(epochs) epochs, batch \(batchSize)")
    let start = Date()
    let (classifier, epochs) = try pretraining.run(
      step: { step, steps, loss in
        print("  step \(step)/\(steps)  loss \(String(format: "%.3f", loss))")
        fflush(nil)
      },
      progress: { epoch in
        print(
          "epoch \(epoch.epoch)/\(self.epochs)  loss \(String(format: "%.3f", epoch.loss))  train accuracy "
            + "\(String(format: "%.1f", 100 * epoch.trainAccuracy))%  held-out accuracy \(String(format: "%.1f", 100 * epoch.validationAccuracy))%  "
            + "\(String(format: "%.0f", epoch.imagesPerSecond)) crops/s")
        fflush(nil)
      })
    let metadata = [
      "format": "pt", "swift_detr": "pretrain-backbone", "task": "built-in shapes crops: " + SyntheticShapes.cropClassNames.joined(separator: ", "),
    ]
    try SafeTensors.save(classifier.torchvisionStateDict(), metadata: metadata, to: outputURL)
    let record: [String: Any] = [
      "model": model.rawValue, "preset": config ?? preset, "overrides": overrides, "classes": SyntheticShapes.cropClassNames,
      "settings": try JSONSerialization.jsonObject(with: JSONEncoder().encode(settings)),
      "epochs": try JSONSerialization.jsonObject(with: JSONEncoder().encode(epochs)),
    ]
    let recordURL = outputURL.deletingPathExtension().appendingPathExtension("json")
    try JSONSerialization.data(withJSONObject: record, options: [.prettyPrinted, .sortedKeys]).write(to: recordURL)
    print(
      "wrote \(output) (held-out accuracy \(String(format: "%.1f", 100 * (epochs.last?.validationAccuracy ?? 0)))%, "
        + "\(String(format: "%.0f", Date().timeIntervalSince(start))) s) and \(recordURL.path)\n"
        + "train from it: detr train --model \(model.rawValue) --preset \(config ?? preset) --backbone-weights \(output)")
  }

  /// The chosen architecture's backbone.
  func backboneConfig() throws -> BackboneConfig {
    let detector = try ModelChoice(kind: model, preset: preset, configFile: config, overrides: overrides).makeDetector()
    guard let object = try JSONSerialization.jsonObject(with: detector.encodedConfig()) as? [String: Any],
      let backbone = object["backbone"], detector.backboneNetwork != nil
    else {
      throw ValidationError("\(model.rawValue) \(config ?? preset) has no ResNet backbone to pretrain")
    }
    return try JSONDecoder().decode(BackboneConfig.self, from: JSONSerialization.data(withJSONObject: backbone))
  }

  func describe(_ backbone: BackboneConfig) -> String {
    "\(backbone.bottleneck ? "bottleneck" : "basic") blocks \(backbone.blocksPerStage), widths \(backbone.stageChannels)"
  }
}
