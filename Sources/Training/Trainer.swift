import COCO
import COCOEval
import Detection
import Detectors
import Foundation
import Torch
import TorchNN

/// Where a run is: resumable exactly from here.
public struct TrainingPosition: Codable, Sendable, Equatable {
  public var epoch = 0
  /// Batches of `epoch` already done.
  public var batch = 0
  /// Optimizer steps done.
  public var step = 0
  public var bestAP: Double?

  enum CodingKeys: String, CodingKey {
    case epoch, batch, step
    case bestAP = "best_ap"
  }
}

/// Trains a detector on a dataset: the reference recipe, evaluation with COCO metrics, metrics
/// files, and checkpoints after which a killed run resumes exactly as if it had not stopped.
///
/// The output folder holds `config.json` (family, config, categories, recipe), `last/` and `best/`
/// checkpoints (with `optimizer.safetensors`, `trainer.json` and the RNG state in `rng.safetensors`),
/// and `metrics.jsonl` / `metrics.csv`.
public final class Trainer {
  public let detector: any Detector
  public let categories: CategoryMap
  public let recipe: TrainingRecipe
  public let trainLoader: DetectionLoader
  public let validation: (loader: DetectionLoader, annotations: URL)?
  public let output: URL
  public var maxIterations: Int?
  public var checkpointEvery = 50
  public var logEvery = 10
  public private(set) var position = TrainingPosition()
  let optimizer: any Optimizer
  /// The moving average of the weights, when the recipe keeps one.
  public let ema: WeightsEMA?
  /// Each parameter group's learning rate before the schedule's factor.
  let baseLearningRates: [Double]
  var metrics: MetricsLog
  /// TensorBoard's view of the run, opened when `run` starts.
  var events: TrainingEvents?

  public init(
    detector: any Detector, categories: CategoryMap, recipe: TrainingRecipe, trainLoader: DetectionLoader,
    validation: (loader: DetectionLoader, annotations: URL)?, output: URL
  ) throws {
    self.detector = detector
    self.categories = categories
    self.recipe = recipe
    self.trainLoader = trainLoader
    self.validation = validation
    self.output = output
    try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
    detector.train()
    if let resnet = detector.backboneNetwork {
      if recipe.backboneLearningRate == 0 {
        resnet.freeze()
      } else if recipe.freezeBackboneStem {
        resnet.freeze(stemAndStages: recipe.frozenBackboneStages)
      }
    }
    let groups = parameterGroups(of: detector, recipe: recipe)
    switch recipe.optimizer {
    case .adamW: optimizer = AdamW(groups: groups)
    case .sgd: optimizer = SGD(groups: groups, momentum: recipe.momentum)
    }
    baseLearningRates = optimizer.groups.map(\.learningRate)
    ema = recipe.emaDecay.map { WeightsEMA(of: detector, decay: $0) }
    metrics = try MetricsLog(folder: output)
  }

  /// Whether a loss term is the final prediction's (`loss_ce`, `loss_bbox`, RetinaNet's `loss_iou`) rather
  /// than an auxiliary layer's (`loss_bbox_0`), the encoder's (`_enc`) or denoising's (`_dn`).
  static func isFinalTerm(_ name: String) -> Bool {
    guard name.hasPrefix("loss_") else { return false }
    return name.split(separator: "_").count == 2
  }

  /// Whether `output` holds a run's checkpoint to resume from (the last one, or the one a save was replacing).
  public static func hasCheckpoint(in output: URL) -> Bool {
    let last = output.appendingPathComponent("last")
    return [last, DetectorCheckpoint.previousFolder(of: last)].contains {
      FileManager.default.fileExists(atPath: $0.appendingPathComponent("trainer.json").path)
    }
  }

  /// Restores model, optimizer, position and RNG from `output/last`. Returns false when there is none.
  @discardableResult
  public func resume() throws -> Bool {
    let last = output.appendingPathComponent("last")
    let folder = FileManager.default.fileExists(atPath: last.path) ? last : DetectorCheckpoint.previousFolder(of: last)
    guard FileManager.default.fileExists(atPath: folder.appendingPathComponent("trainer.json").path) else { return false }
    try detector.load(stateDict: SafeTensors.load(contentsOf: folder.appendingPathComponent("model.safetensors")).tensors)
    try optimizer.load(stateDict: SafeTensors.load(contentsOf: folder.appendingPathComponent("optimizer.safetensors")).tensors)
    position = try JSONDecoder().decode(TrainingPosition.self, from: Data(contentsOf: folder.appendingPathComponent("trainer.json")))
    if let state = try SafeTensors.load(contentsOf: folder.appendingPathComponent("rng.safetensors")).tensors["default_generator"] {
      Generator.currentState = state
    }
    let emaFile = folder.appendingPathComponent("ema.safetensors")
    if ema == nil, FileManager.default.fileExists(atPath: emaFile.path) {
      throw TrainingError("\(folder.path) keeps an EMA of the weights: the run was started with --ema-decay; resume it with the same value")
    }
    if let ema {
      let file = emaFile
      guard FileManager.default.fileExists(atPath: file.path) else {
        throw TrainingError("\(folder.path) has no ema.safetensors: the run was started without --ema-decay; resume it without")
      }
      try ema.load(SafeTensors.load(contentsOf: file).tensors, source: file.path)
    }
    detector.train()
    try metrics.truncate(afterStep: position.step)
    return true
  }

  /// Trains to the end of the recipe (or `maxIterations` steps), evaluating after each epoch.
  /// `progress` receives the step lines (`.live`: each replaces the last on a terminal) and the
  /// evaluation reports and notices (`.report`).
  public func run(progress: (String, ProgressKind) -> Void = Trainer.printProgress) throws {
    let epochs = recipe.epochs
    let totalSteps = Swift.min(maxIterations ?? .max, epochs * trainLoader.batchesPerEpoch)
    let start = Date()
    var stepsThisRun = 0
    var imagesSinceLog = 0
    var logStart = Date()
    // A run from the start drops the metrics of one that was killed before its first checkpoint.
    if position.step == 0 { try metrics.truncate(afterStep: 0) }
    if events == nil { events = try TrainingEvents(folder: output, resumedAtStep: position.step) }
    while position.epoch < epochs {
      optimizer.setLearningRates(baseLearningRates.map { $0 * recipe.learningRateFactor(epoch: position.epoch, step: position.step) })
      let stream = trainLoader.batches(epoch: position.epoch, startingAt: position.batch)
      while let loaded = try stream.nextBatch() {
        if let maxIterations, position.step >= maxIterations { break }
        for skipped in loaded.skipped { progress("skipped \(skipped)", .report) }
        if let batch = loaded.batch {
          if position.step < recipe.warmupSteps {
            optimizer.setLearningRates(baseLearningRates.map { $0 * recipe.learningRateFactor(epoch: position.epoch, step: position.step) })
          } else if position.step == recipe.warmupSteps {
            optimizer.setLearningRates(baseLearningRates.map { $0 * recipe.learningRateFactor(epoch: position.epoch) })
          }
          let losses = try trainingStep(
            detector: detector, optimizer: optimizer, batch: batch, clipNorm: recipe.gradientClipNorm,
            step: position.step)
          ema?.update(from: detector)
          imagesSinceLog += batch.targets.count
          position.step += 1
          stepsThisRun += 1
          if position.step % logEvery == 0 {
            let seconds = Date().timeIntervalSince(logStart)
            let rate = Double(imagesSinceLog) / Swift.max(seconds, 1e-9)
            try metrics.append(
              step: position.step, epoch: position.epoch, losses: losses, learningRate: optimizer.groups[0].learningRate,
              imagesPerSecond: rate)
            try events?.logStep(position.step, losses: losses, learningRate: optimizer.groups[0].learningRate, imagesPerSecond: rate)
            let elapsed = Date().timeIntervalSince(start)
            let remaining = Double(totalSteps - position.step) * elapsed / Double(Swift.max(stepsThisRun, 1))
            // The final layer's terms; the auxiliary (`_0`, `_1`, ...), encoder and denoising ones are in metrics.jsonl.
            let terms = losses.terms.filter { Self.isFinalTerm($0.name) }
            let termText = terms.map { "\($0.name.replacingOccurrences(of: "loss_", with: "")) \(String(format: "%.3f", $0.value))" }
            progress(
              "epoch \(position.epoch + 1)/\(epochs) step \(position.step)/\(totalSteps)  loss \(String(format: "%.3f", losses.total)) ("
                + termText.joined(separator: ", ")
                + String(
                  format: ")  lr %.1e  %.2f img/s  ETA %@  %.0f MiB", optimizer.groups[0].learningRate, rate, duration(remaining),
                  ProcessMemory.residentMiB), .live)
            (imagesSinceLog, logStart) = (0, Date())
          }
        }
        position.batch = loaded.index + 1
        if position.step % checkpointEvery == 0 { try saveCheckpoint(named: "last") }
      }
      if let maxIterations, position.step >= maxIterations { break }
      position.epoch += 1
      position.batch = 0
      try saveCheckpoint(named: "last")
      if let validation { try evaluate(validation, progress: progress) }
    }
    try saveCheckpoint(named: "last")
  }

  func evaluate(_ validation: (loader: DetectionLoader, annotations: URL), progress: (String, ProgressKind) -> Void) throws {
    let (result, found) = try DetectorEvaluation.evaluateKeepingDetections(
      detector, loader: validation.loader, categories: categories, annotationsFile: validation.annotations)
    let stats = result.stats
    try metrics.appendEvaluation(step: position.step, epoch: position.epoch, stats: stats)
    try events?.logEvaluation(result, step: position.step)
    try events?.logPredictions(found, samples: validation.loader.dataset.samples, categories: categories, step: position.step)
    progress(result.summaryText + "\n" + result.perCategoryTable, .report)
    if let ema {
      // The averaged weights: evaluated, and kept as a checkpoint folder of their own (`ema/`) for predict.
      let averaged = try ema.withAveragedWeights(in: detector) {
        let evaluation = try DetectorEvaluation.evaluate(
          detector, loader: validation.loader, categories: categories, annotationsFile: validation.annotations)
        try DetectorCheckpoint.save(detector, categories: categories, to: output.appendingPathComponent("ema"))
        return evaluation
      }
      try metrics.appendEvaluation(step: position.step, epoch: position.epoch, stats: averaged.stats, weights: "ema")
      try events?.logEvaluation(averaged, step: position.step, weights: "ema")
      progress("EMA weights (decay \(ema.decay)): " + averaged.summaryText, .report)
    }
    try TrainingChart.redraw(metrics: metrics.jsonl, to: output.appendingPathComponent("chart.png"))
    if stats[0] > (position.bestAP ?? -1) {
      position.bestAP = stats[0]
      try saveCheckpoint(named: "best")
    }
  }

  /// How a line of progress is shown.
  public enum ProgressKind: Sendable {
    /// The step line: on a terminal each one overwrites the previous.
    case live
    /// A report that stays: evaluation tables, notices.
    case report
  }

  /// Prints progress and flushes, so that it reaches a log file as it happens. On a terminal the
  /// live line is redrawn in place; in a file or pipe every line is kept.
  public static func printProgress(_ text: String, kind: ProgressKind) {
    progressPrinter.print(text, kind: kind)
  }

  private static let progressPrinter = ProgressPrinter(terminal: isatty(STDOUT_FILENO) != 0)

  /// "1h02m", "3m20s" or "45s".
  func duration(_ seconds: Double) -> String {
    let total = Int(seconds.rounded())
    if total >= 3600 { return String(format: "%dh%02dm", total / 3600, total % 3600 / 60) }
    if total >= 60 { return String(format: "%dm%02ds", total / 60, total % 60) }
    return "\(total)s"
  }

  /// Writes the resolved architecture, the recipe, the training augmentation and the categories at the start of a run.
  /// `extra` adds the caller's entries (the command line's settings, changes made on resume).
  public func writeRunConfig(extra: [String: Any] = [:]) throws {
    var object: [String: Any] = extra
    object["model"] = detector.kind.rawValue
    object["config"] = try JSONSerialization.jsonObject(with: detector.encodedConfig())
    object["recipe"] = try JSONSerialization.jsonObject(with: JSONEncoder().encode(recipe))
    object["augmentation"] = trainLoader.transform.augmentation.rawValue
    object["categories"] = try JSONSerialization.jsonObject(with: JSONEncoder().encode(categories))
    try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
      .write(to: output.appendingPathComponent("config.json"), options: .atomic)
  }

  /// Writes model, optimizer, position and RNG state into one checkpoint folder, replaced safely.
  func saveCheckpoint(named name: String) throws {
    let folder = output.appendingPathComponent(name)
    var extra: [String: Data] = [
      "optimizer.safetensors": try SafeTensors.encode(optimizer.stateDict()),
      "trainer.json": try JSONEncoder().encode(position),
      "rng.safetensors": try SafeTensors.encode(["default_generator": Generator.currentState]),
    ]
    if let ema { extra["ema.safetensors"] = try SafeTensors.encode(ema.state) }
    try DetectorCheckpoint.save(detector, categories: categories, to: folder, extraFiles: extra)
  }
}
