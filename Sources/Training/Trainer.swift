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
  /// Batches of `epoch` already done (by each process, in a data-parallel run).
  public var batch = 0
  /// Samples of `epoch`'s order already done by all processes together: where a resumed run continues,
  /// whatever its number of processes. Nil in checkpoints written before it was kept (then `batch` ×
  /// batch size).
  public var sample: Int?
  /// Optimizer steps done.
  public var step = 0
  public var bestAP: Double?

  enum CodingKeys: String, CodingKey {
    case epoch, batch, step, sample
    case bestAP = "best_ap"
  }
}

/// Trains a detector on a dataset: the reference recipe, evaluation with COCO metrics, metrics
/// files, and checkpoints after which a killed run resumes exactly as if it had not stopped.
///
/// The output folder holds `config.json` (family, config, categories, recipe), `last/` and `best/`
/// checkpoints (with `optimizer.safetensors`, `trainer.json` and the RNG state in `rng.safetensors`),
/// and `metrics.jsonl` / `metrics.csv`.
///
/// In a data-parallel run (`dataParallel`) every rank runs a trainer on its shard of the data
/// (`trainLoader.shard`); rank 0's weights, optimizer state and position go to all at the start, the
/// gradients are averaged every step, and only rank 0 writes the run folder and reports progress.
public final class Trainer {
  public let detector: any Detector
  public let categories: CategoryMap
  public let recipe: TrainingRecipe
  public let trainLoader: DetectionLoader
  public let validation: (loader: DetectionLoader, annotations: URL)?
  /// The preset the detector was made from (nil for a config file), recorded in every checkpoint.
  public var preset: String?
  /// The evaluation resize of the training data, recorded in every checkpoint.
  public var input: DetectorInput { DetectorInput(evaluationOf: trainLoader.transform) }
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
  /// The run's metrics files (rank 0 only).
  var metrics: MetricsLog?
  /// TensorBoard's view of the run, opened when `run` starts (rank 0 only).
  var events: TrainingEvents?
  /// The data-parallel group this trainer is one rank of; nil when it trains alone.
  public let dataParallel: DataParallel?
  /// Whether this process writes the run folder: the only one, or rank 0.
  public var isMain: Bool { (dataParallel?.rank ?? 0) == 0 }

  public init(
    detector: any Detector, categories: CategoryMap, recipe: TrainingRecipe, trainLoader: DetectionLoader,
    validation: (loader: DetectionLoader, annotations: URL)?, output: URL, processGroup: ProcessGroup? = nil
  ) throws {
    self.detector = detector
    self.categories = categories
    self.recipe = recipe
    self.trainLoader = trainLoader
    self.validation = validation
    self.output = output
    let isMain = (processGroup?.rank ?? 0) == 0
    if isMain { try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true) }
    Self.prepareForTraining(detector, recipe: recipe)
    optimizer = Self.makeOptimizer(for: detector, recipe: recipe)
    baseLearningRates = optimizer.groups.map(\.learningRate)
    ema = recipe.emaDecay.map { WeightsEMA(of: detector, decay: $0) }
    metrics = isMain ? try MetricsLog(folder: output) : nil
    let trainable = optimizer.groups.flatMap { $0.parameters.map(\.tensor) }
    dataParallel = try processGroup.map { try DataParallel(group: $0, parameters: trainable) }
  }

  /// The recipe's optimizer over the detector's parameter groups (its rules: rates and weight decay).
  static func makeOptimizer(for detector: any Detector, recipe: TrainingRecipe) -> any Optimizer {
    let groups = parameterGroups(of: detector, recipe: recipe)
    switch recipe.optimizer {
    case .adamW: return AdamW(groups: groups)
    case .sgd: return SGD(groups: groups, momentum: recipe.momentum)
    }
  }

  /// Puts the detector in training mode and freezes what the recipe keeps fixed (the whole backbone at a
  /// backbone learning rate of 0, else the stem and first stages when the recipe says so).
  public static func prepareForTraining(_ detector: any Detector, recipe: TrainingRecipe) {
    detector.train()
    if let resnet = detector.backboneNetwork {
      if recipe.backboneLearningRate == 0 {
        resnet.freeze()
      } else if recipe.freezeBackboneStem {
        resnet.freeze(stemAndStages: recipe.frozenBackboneStages)
      }
    }
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
  /// In a data-parallel run rank 0 reads the checkpoint and `run` hands it to the others.
  @discardableResult
  public func resume() throws -> Bool {
    guard isMain else { return true }
    let last = output.appendingPathComponent("last")
    let folder = FileManager.default.fileExists(atPath: last.path) ? last : DetectorCheckpoint.previousFolder(of: last)
    guard FileManager.default.fileExists(atPath: folder.appendingPathComponent("trainer.json").path) else { return false }
    try detector.load(stateDict: SafeTensors.load(contentsOf: folder.appendingPathComponent("model.safetensors")).tensors)
    try optimizer.load(stateDict: SafeTensors.load(contentsOf: folder.appendingPathComponent("optimizer.safetensors")).tensors)
    position = try JSONDecoder().decode(TrainingPosition.self, from: Data(contentsOf: folder.appendingPathComponent("trainer.json")))
    if position.sample == nil { position.sample = Swift.min(trainLoader.dataset.samples.count, position.batch * trainLoader.batchSize) }
    generatorStates = try SafeTensors.load(contentsOf: folder.appendingPathComponent("rng.safetensors")).tensors
    if let state = generatorStates["default_generator"] { Generator.currentState = state }
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
    try metrics?.truncate(afterStep: position.step)
    return true
  }

  /// The generator states of the checkpoint resumed from (a data-parallel run keeps one per rank).
  var generatorStates: [String: Tensor] = [:]

  /// Gives every rank rank 0's weights, optimizer state, averages and position, and its own generator
  /// state from the checkpoint (a rank the checkpoint has none for keeps its seed's).
  func synchronizeRanks(_ parallel: DataParallel) throws {
    try parallel.broadcastWeights(of: detector)
    let optimizerState = try parallel.broadcast(stateDict: isMain ? optimizer.stateDict() : [:])
    if !isMain && !optimizerState.isEmpty { try optimizer.load(stateDict: optimizerState) }
    if let ema {
      let averages = try parallel.broadcast(stateDict: isMain ? ema.state : [:])
      if !isMain { try ema.load(averages, source: "rank 0") }
    }
    position = try parallel.broadcast(position)
    let states = try parallel.broadcast(stateDict: isMain ? generatorStates : [:])
    if let state = states[DataParallel.generatorKey(rank: parallel.rank)] { Generator.currentState = state }
  }

  /// Trains to the end of the recipe (or `maxIterations` steps), evaluating after each epoch.
  /// `progress` receives the step lines (`.live`: each replaces the last on a terminal) and the
  /// evaluation reports and notices (`.report`).
  public func run(progress: (String, ProgressKind) -> Void = Trainer.printProgress) throws {
    let epochs = recipe.epochs
    if let dataParallel {
      try synchronizeRanks(dataParallel)
      ProcessGroup.current = dataParallel.group
    }
    defer { ProcessGroup.current = nil }
    let totalSteps = Swift.min(maxIterations ?? .max, epochs * trainLoader.batchesPerEpoch)
    let start = Date()
    var stepsThisRun = 0
    var imagesSinceLog = 0
    var logStart = Date()
    // A run from the start drops the metrics of one that was killed before its first checkpoint.
    if position.step == 0 { try metrics?.truncate(afterStep: 0) }
    if events == nil && isMain { events = try TrainingEvents(folder: output, resumedAtStep: position.step) }
    while position.epoch < epochs {
      optimizer.setLearningRates(baseLearningRates.map { $0 * recipe.learningRateFactor(epoch: position.epoch, step: position.step) })
      let stream = trainLoader.batches(epoch: position.epoch, fromSample: position.sample ?? 0)
      while let loaded = try stream.nextBatch() {
        if let maxIterations, position.step >= maxIterations { break }
        for skipped in loaded.skipped { progress("skipped \(skipped)", .report) }
        if loaded.batch == nil, dataParallel != nil {
          throw TrainingError("every image of a batch was unreadable; in a data-parallel run each step needs one on every rank: repair or remove the images listed above")
        }
        if let batch = loaded.batch {
          if position.step < recipe.warmupSteps {
            optimizer.setLearningRates(baseLearningRates.map { $0 * recipe.learningRateFactor(epoch: position.epoch, step: position.step) })
          } else if position.step == recipe.warmupSteps {
            optimizer.setLearningRates(baseLearningRates.map { $0 * recipe.learningRateFactor(epoch: position.epoch) })
          }
          let losses = try trainingStep(
            detector: detector, optimizer: optimizer, batch: batch, clipNorm: recipe.gradientClipNorm,
            step: position.step, dataParallel: dataParallel, precision: recipe.precision)
          ema?.update(from: detector)
          imagesSinceLog += losses.images
          position.step += 1
          stepsThisRun += 1
          if position.step % logEvery == 0 {
            let seconds = Date().timeIntervalSince(logStart)
            let rate = Double(imagesSinceLog) / Swift.max(seconds, 1e-9)
            try metrics?.append(
              step: position.step, epoch: position.epoch, losses: losses, learningRate: optimizer.groups[0].learningRate,
              imagesPerSecond: rate)
            try events?.logStep(position.step, losses: losses, learningRate: optimizer.groups[0].learningRate, imagesPerSecond: rate)
            let elapsed = Date().timeIntervalSince(start)
            let remaining = Double(totalSteps - position.step) * elapsed / Double(Swift.max(stepsThisRun, 1))
            // The final layer's terms; the auxiliary (`_0`, `_1`, ...), encoder and denoising ones are in metrics.jsonl.
            let terms = losses.terms.filter { Self.isFinalTerm($0.name) }
            let termText = terms.map { "\($0.name.replacingOccurrences(of: "loss_", with: "")) \(String(format: "%.3f", $0.value))" }
            if isMain {
            progress(
              "epoch \(position.epoch + 1)/\(epochs) step \(position.step)/\(totalSteps)  loss \(String(format: "%.3f", losses.total)) ("
                + termText.joined(separator: ", ")
                + String(
                  format: ")  lr %.1e  %.2f img/s  ETA %@  %.0f MiB", optimizer.groups[0].learningRate, rate, duration(remaining),
                  ProcessMemory.residentMiB), .live)
            }
            (imagesSinceLog, logStart) = (0, Date())
          }
        }
        position.batch += 1
        position.sample = Swift.min(trainLoader.dataset.samples.count, (position.sample ?? 0) + trainLoader.samplesPerStep)
        if position.step % checkpointEvery == 0 { try saveCheckpoint(named: "last") }
      }
      if let maxIterations, position.step >= maxIterations { break }
      position.epoch += 1
      position.batch = 0
      position.sample = 0
      try saveCheckpoint(named: "last")
      if let validation { try evaluate(validation, progress: progress) }
    }
    try saveCheckpoint(named: "last")
  }

  func evaluate(_ validation: (loader: DetectionLoader, annotations: URL), progress: (String, ProgressKind) -> Void) throws {
    let found = try validationDetections(validation.loader)
    let averagedFound = try ema.map { ema in
      // The averaged weights: evaluated, and kept as a checkpoint folder of their own (`ema/`) for predict.
      try ema.withAveragedWeights(in: detector) {
        if isMain { try DetectorCheckpoint.save(detector, categories: categories, input: input, preset: preset, to: output.appendingPathComponent("ema")) }
        return try validationDetections(validation.loader)
      }
    }
    var improved = false
    if isMain {
      let groundTruth = try GroundTruth.load(contentsOf: validation.annotations)
      let result = COCOEvaluator().evaluate(groundTruth: groundTruth, detections: found)
      let stats = result.stats
      try metrics?.appendEvaluation(step: position.step, epoch: position.epoch, stats: stats)
      try events?.logEvaluation(result, step: position.step)
      try events?.logPredictions(found, samples: validation.loader.dataset.samples, categories: categories, step: position.step)
      try appendReport(result.summaryText + "\n\n" + result.perCategoryTable, header: true)
      var averagedStats: [Double]?
      if let ema, let averagedFound {
        let averaged = COCOEvaluator().evaluate(groundTruth: groundTruth, detections: averagedFound)
        try metrics?.appendEvaluation(step: position.step, epoch: position.epoch, stats: averaged.stats, weights: "ema")
        try events?.logEvaluation(averaged, step: position.step, weights: "ema")
        try appendReport("EMA weights (decay \(ema.decay))\n" + averaged.summaryText + "\n\n" + averaged.perCategoryTable)
        averagedStats = averaged.stats
      }
      if let metrics { try TrainingChart.redraw(metrics: metrics.jsonl, to: output.appendingPathComponent("chart.png")) }
      let first = position.bestAP == nil
      if stats[0] > (position.bestAP ?? -1) {
        position.bestAP = stats[0]
        improved = true
      }
      progress(Self.evaluationLine(epoch: position.epoch, of: recipe.epochs, stats: stats, averaged: averagedStats, best: position.bestAP!, improved: improved)
        + (first ? "  (full tables in evaluations.txt)" : ""), .report)
    }
    // Saving gathers every rank's generator state: all take part when rank 0 found a better AP.
    if let dataParallel { improved = try dataParallel.broadcast(improved) }
    if improved { try saveCheckpoint(named: "best") }
  }

  /// One line per evaluation: "epoch 3/6 validation: AP 0.412, AP50 0.655, AP75 0.430, AP_S/M/L ...  best so far".
  static func evaluationLine(epoch: Int, of epochs: Int, stats: [Double], averaged: [Double]?, best: Double, improved: Bool) -> String {
    func f(_ value: Double) -> String { value < 0 ? "-" : String(format: "%.3f", value) }
    var line = "epoch \(epoch)/\(epochs) validation: AP \(f(stats[0])), AP50 \(f(stats[1])), AP75 \(f(stats[2])), AP small/medium/large \(f(stats[3]))/\(f(stats[4]))/\(f(stats[5]))"
    if let averaged { line += "; EMA AP \(f(averaged[0])), AP50 \(f(averaged[1]))" }
    return line + (improved ? "  best so far (saved as best/)" : "  (best AP \(f(best)))")
  }

  /// Appends an evaluation's full report (pycocotools' summary and the per-category table) to
  /// `evaluations.txt` in the run folder, under a line naming the epoch and step when `header`.
  func appendReport(_ text: String, header: Bool = false) throws {
    let file = output.appendingPathComponent("evaluations.txt")
    let heading = header ? "== epoch \(position.epoch)/\(recipe.epochs), step \(position.step)\n" : ""
    let data = Data((heading + text + "\n\n").utf8)
    if let handle = try? FileHandle(forWritingTo: file) {
      defer { try? handle.close() }
      try handle.seekToEnd()
      try handle.write(contentsOf: data)
    } else {
      try data.write(to: file)
    }
  }

  /// The detections of the validation images: this process's, or in a data-parallel run each rank's
  /// shard, gathered on every rank.
  func validationDetections(_ loader: DetectionLoader) throws -> [DetectedBox] {
    let precision = recipe.precision
    guard let dataParallel else {
      return try DetectorEvaluation.detections(of: detector, loader: loader, categories: categories, precision: precision)
    }
    let shard = loader.sharded(.init(index: dataParallel.rank, count: dataParallel.worldSize, equalLength: false))
    return try dataParallel.gather(DetectorEvaluation.detections(of: detector, loader: shard, categories: categories, precision: precision))
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
    guard isMain else { return }
    var object: [String: Any] = extra
    object["model"] = detector.kind.rawValue
    object["config"] = try JSONSerialization.jsonObject(with: detector.encodedConfig())
    object["recipe"] = try JSONSerialization.jsonObject(with: JSONEncoder().encode(recipe))
    object["augmentation"] = trainLoader.transform.augmentation.rawValue
    object["categories"] = try JSONSerialization.jsonObject(with: JSONEncoder().encode(categories))
    try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
      .write(to: output.appendingPathComponent("config.json"), options: .atomic)
  }

  /// Writes model, optimizer, position and RNG state into one checkpoint folder, replaced safely. In a
  /// data-parallel run every rank calls it (their generator states are gathered) and rank 0 writes.
  func saveCheckpoint(named name: String) throws {
    let generators = try dataParallel?.gatherGeneratorStates() ?? ["default_generator": Generator.currentState]
    guard isMain else { return }
    let folder = output.appendingPathComponent(name)
    var extra: [String: Data] = [
      "optimizer.safetensors": try SafeTensors.encode(optimizer.stateDict()),
      "trainer.json": try JSONEncoder().encode(position),
      "rng.safetensors": try SafeTensors.encode(generators),
    ]
    if let ema { extra["ema.safetensors"] = try SafeTensors.encode(ema.state) }
    try DetectorCheckpoint.save(detector, categories: categories, input: input, preset: preset, to: folder, extraFiles: extra)
  }
}
