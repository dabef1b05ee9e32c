import ArgumentParser
import COCO
import Detection
import Detectors
import Foundation
import Torch
import Training

extension ModelKind: ExpressibleByArgument {}
extension SyntheticShapes.ObjectSizes: ExpressibleByArgument {}
extension DETRTransform.Augmentation: ExpressibleByArgument {}
extension DETRTransform.Resizing: ExpressibleByArgument {}

/// `detr train`: trains a detector on COCO-format data (by default the built-in synthetic shapes).
struct TrainCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "train",
    abstract: "Train a detector on COCO-format data, or on the built-in synthetic dataset when no data is given.",
    discussion: "Model kinds and presets: "
      + ModelKind.allCases.map { "\($0.rawValue) (\($0.presets.joined(separator: ", ")))" }.joined(separator: "; "))

  @Option(help: "The detector family.")
  var model: ModelKind = .deformableDETR

  @Option(help: "A preset of the family (see the list above).")
  var preset = "small"

  @Option(help: ArgumentHelp("An architecture config JSON of the family, instead of a preset.", valueName: "FILE.json"))
  var config: String?

  @Option(help: ArgumentHelp("Folder of the images.", valueName: "DIR"))
  var data: String?

  @Option(name: .customLong("train-annotations"), help: ArgumentHelp("COCO annotations of the training images.", valueName: "A.json"))
  var trainAnnotations: String?

  @Option(name: .customLong("val-annotations"), help: ArgumentHelp("COCO annotations of the validation images.", valueName: "B.json"))
  var validationAnnotations: String?

  @Option(help: ArgumentHelp("Run folder: checkpoints, metrics and configs.", valueName: "DIR"))
  var output = "runs/train"

  @Option(help: "Epochs (default: the family's reference recipe).")
  var epochs: Int?

  @Option(
    name: .customLong("lr-drop-epoch"),
    help: "The epoch after which the learning rate drops ×0.1 (default: the recipe's, or 4/5 of --epochs; 11 of 12 for the 1x schedule).")
  var learningRateDropEpoch: Int?

  @Option(name: .customLong("max-iterations"), help: "Stop after this many optimizer steps.")
  var maxIterations: Int?

  @Option(name: .customLong("batch-size"), help: "Images per step.")
  var batchSize = 2

  @Option(help: "Seed of initialization, data order and augmentation.")
  var seed: UInt64 = 42

  @Option(name: .customLong("learning-rate"), help: "Base learning rate (default: the reference recipe's).")
  var learningRate: Double?

  @Option(name: .customLong("image-scale"), help: "Scale of DETR's image sizes (800 shorter side at 1; the synthetic data uses 0.4).")
  var imageScale: Double?

  @Option(help: "Training augmentation: detr (flip, multi-scale resize, random crops) or flip (flip only, at the evaluation size).")
  var augmentation: DETRTransform.Augmentation = .detr

  @Option(name: .customLong("synthetic-images"), help: "Images of the synthetic dataset when no data is given.")
  var syntheticImages = 1000

  @Option(name: .customLong("synthetic-size"), help: "Side of the synthetic images in pixels.")
  var syntheticSize = 320

  @Option(name: .customLong("synthetic-objects"), help: "Object sizes of the synthetic dataset: all (COCO's small, medium and large) or medium-large.")
  var syntheticObjects: SyntheticShapes.ObjectSizes = .allAreaRanges

  @Option(name: .customLong("checkpoint-every"), help: "Save the last checkpoint every this many steps.")
  var checkpointEvery = 50

  @Option(name: .customLong("log-every"), help: "Print and record the losses every this many steps.")
  var logEvery = 10

  @Option(
    name: .customLong("set"),
    help: ArgumentHelp("Override a config field, e.g. transformer.queries=50 (repeatable).", valueName: "key=value"))
  var overrides: [String] = []

  @Flag(help: "Continue the run in --output from its last checkpoint.")
  var resume = false

  @Option(
    name: .customLong("init-from"),
    help: ArgumentHelp(
      "Start from these weights (ours or a transformers folder); keys that do not fit, such as another class count's heads, are reported and left as initialized.",
      valueName: "DIR"))
  var initFrom: String?

  @Flag(name: .customLong("skip-invalid-annotations"), help: "Leave out annotations that cannot be used (unknown ids, malformed boxes) instead of stopping.")
  var skipInvalidAnnotations = false

  @Flag(name: .customLong("skip-missing-images"), help: "Leave out images whose files are missing instead of stopping.")
  var skipMissingImages = false

  @Flag(help: "Train on images without annotations too (left out by default, as detectron2 and MMDetection do; evaluation always counts them).")
  var keepEmpty = false

  @Option(
    name: .customLong("ema-decay"),
    help: ArgumentHelp(
      "Keep an exponential moving average of the weights with this decay (e.g. 0.9998), evaluated and checkpointed beside the raw weights (run/ema is a checkpoint folder of the averages). Off by default.",
      valueName: "D"))
  var emaDecay: Double?

  @Option(
    name: .customLong("backbone-weights"),
    help: ArgumentHelp(
      "Initialize the backbone from ImageNet weights: a torchvision .pth, or a timm or transformers .safetensors (or folder). Frozen batch norm, the frozen stem and the backbone's lower learning rate then apply, as in the official recipes.",
      valueName: "FILE"))
  var backboneWeights: String?

  @Option(
    name: .customLong("nproc-per-node"),
    help: ArgumentHelp(
      "Train data-parallel in this many worker processes on this machine (as torchrun starts them); --batch-size is per worker. A worker started by torchrun (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT set) needs no flag.",
      valueName: "N"))
  var nprocPerNode = 1

  @Option(help: "The collectives' backend in a data-parallel run: gloo (CPU tensors) or nccl (CUDA tensors, with a CUDA libtorch). Default: nccl on GPUs, else gloo.")
  var backend: ProcessGroup.Backend?

  @Option(help: deviceHelp)
  var device: Device?

  @Option(
    name: .customLong("distributed-timeout"),
    help: ArgumentHelp("Seconds a worker waits for the others (at the start, at each collective) before giving up.", valueName: "S"))
  var distributedTimeout = 1800

  @Option(help: "Arithmetic of the forward pass: fp32, or bf16 (bfloat16 autocast with float32 weights, optimizer state and losses; fast on GPUs and on CPUs with bfloat16 instructions, very slow on CPUs without them).")
  var precision: Precision = .fp32

  @Option(help: "Intra-op threads of each process (default: libtorch's choice; with --nproc-per-node, the cores shared out).")
  var threads: Int?

  func validate() throws {
    guard (1...1024).contains(nprocPerNode) else { throw ValidationError("--nproc-per-node must be between 1 and 1024, got \(nprocPerNode)") }
    guard (1...86400).contains(distributedTimeout) else {
      throw ValidationError("--distributed-timeout must be between 1 and 86400 seconds, got \(distributedTimeout)")
    }
    if let threads, !(1...1024).contains(threads) { throw ValidationError("--threads must be between 1 and 1024, got \(threads)") }
    guard (1...4096).contains(batchSize) else { throw ValidationError("--batch-size must be between 1 and 4096, got \(batchSize)") }
    if let learningRate, !(learningRate.isFinite && learningRate > 0 && learningRate <= 10) {
      throw ValidationError("--learning-rate must be a number in (0, 10], got \(learningRate)")
    }
    if let imageScale, !(imageScale.isFinite && imageScale >= 0.02 && imageScale <= 8) {
      throw ValidationError("--image-scale must be between 0.02 and 8 (1 is DETR's 800-pixel shorter side), got \(imageScale)")
    }
    if let epochs, epochs > 100_000 { throw ValidationError("--epochs must be at most 100000, got \(epochs)") }
    guard (1...1_000_000).contains(syntheticImages) else {
      throw ValidationError("--synthetic-images must be between 1 and 1000000, got \(syntheticImages)")
    }
    if let epochs, epochs <= 0 { throw ValidationError("--epochs must be positive, got \(epochs)") }
    if let learningRateDropEpoch, learningRateDropEpoch <= 0 {
      throw ValidationError("--lr-drop-epoch must be positive, got \(learningRateDropEpoch)")
    }
    if let maxIterations, maxIterations <= 0 { throw ValidationError("--max-iterations must be positive, got \(maxIterations)") }
    if config == nil { try ModelChoice.checkPreset(preset, of: model) }
    let given = [data, trainAnnotations].compactMap { $0 }.count
    guard given == 0 || given == 2 else {
      throw ValidationError("--data and --train-annotations go together (and --val-annotations optionally)")
    }
    guard (64...1024).contains(syntheticSize) else {
      throw ValidationError("--synthetic-size must be between 64 and 1024, got \(syntheticSize)")
    }
    if let emaDecay, !(emaDecay > 0 && emaDecay < 1) {
      throw ValidationError("--ema-decay must lie strictly between 0 and 1 (e.g. 0.9998), got \(emaDecay)")
    }
    if backboneWeights != nil && initFrom != nil {
      throw ValidationError("--init-from brings a whole model, its backbone included; give either it or --backbone-weights")
    }
    guard checkpointEvery > 0, logEvery > 0 else { throw ValidationError("--checkpoint-every and --log-every must be positive") }
  }

  func run() throws {
    if let threads { Torch.threadCount = threads }
    // The device first: a machine that cannot train there stops before the run folder is touched.
    _ = try Device.resolve(device)
    let worker = try WorkerEnvironment.current()
    if nprocPerNode > 1 && worker == nil {
      try WorkerLauncher(count: nprocPerNode, arguments: WorkerLauncher.workerArguments(Array(CommandLine.arguments.dropFirst()))).run()
      return
    }
    guard let worker, worker.worldSize > 1 else {
      let folder = URL(fileURLWithPath: output)
      let existed = FileManager.default.fileExists(atPath: folder.path)
      do {
        var lock: RunLock? = try prepareRunFolder()
        defer { lock = nil }
        // A resumed run takes the settings it was started with; a flag that contradicts them is an error.
        let (effective, changes) = resume ? try resolvedForResume() : (self, [])
        // Every random draw of the run (initialization, dropout, denoising noise) comes from a generator of
        // its own, whose state the checkpoints keep: nothing else in the process can shift the sequence.
        try Self.reportingInterruption(output: output, arguments: Array(CommandLine.arguments.dropFirst())) {
          try Generator(seed: effective.seed).withCurrent { try effective.train(recordingChanges: changes) }
        }
        withExtendedLifetime(lock) {}
      } catch {
        Self.removeIfUntrained(folder, existedBefore: existed)
        throw error
      }
      return
    }
    try runAsWorker(worker)
  }

  /// Checks that the run folder may be trained into, and locks it for this process.
  func prepareRunFolder() throws -> RunLock {
    if !resume && Trainer.hasCheckpoint(in: URL(fileURLWithPath: output)) {
      throw ValidationError("--output \(output) already holds a run; pass --resume to continue it, or choose another --output")
    }
    // A new run goes into a new or empty folder (or one a run began before its first checkpoint), never among other files.
    let runFiles: Set<String> = ["config.json", "metrics.jsonl", "metrics.csv", "run.lock", "chart.png", "chart.svg", "last", "best", "ema"]
    let foreign = ((try? FileManager.default.contentsOfDirectory(atPath: output)) ?? []).filter {
      !runFiles.contains($0) && !$0.hasPrefix("events.out.tfevents.") && !$0.hasPrefix(".last.") && !$0.hasPrefix(".best.") && !$0.hasPrefix(".ema.")
    }
    if !resume && !foreign.isEmpty {
      throw ValidationError(
        "--output \(output) holds files that are not a run's (\(foreign.sorted().prefix(3).joined(separator: ", "))); train into a new or empty folder")
    }
    // One process per run folder, for as long as it trains.
    return try RunLock(folder: URL(fileURLWithPath: output))
  }

  /// Builds the data, the detector and the trainer, resumes when asked, and trains. In a data-parallel
  /// run (`group`) this process reads its shard, and only rank 0 prints.
  func train(recordingChanges changes: [[String: Any]], group: ProcessGroup? = nil) throws {
    let device = try Device.resolve(self.device, localRank: group == nil ? nil : try WorkerEnvironment.current()?.localRank)
    let isMain = (group?.rank ?? 0) == 0
    func print(_ text: String) { if isMain { Swift.print(text) } }
    var (imageFolder, trainFile, validationFile, scale) = try dataset()
    let policy = DetectionDataset.Policy(skipInvalidAnnotations: skipInvalidAnnotations, skipMissingImages: skipMissingImages)
    var trainPolicy = policy
    trainPolicy.dropImagesWithoutAnnotations = !keepEmpty
    let train = try DetectionDataset(annotationsFile: trainFile, imageDirectory: imageFolder, policy: trainPolicy)
    if !train.report.isClean { print("training annotations:\n\(train.report.summary)") }
    if train.droppedImagesWithoutAnnotations > 0 {
      print("left out \(train.droppedImagesWithoutAnnotations) training images without annotations (--keep-empty trains on them too)")
    }
    guard !train.samples.isEmpty else {
      throw CommandFailure("--train-annotations \(trainFile.path) has no images with annotations to train on")
    }
    if imageScale == nil, data != nil,
      let automatic = Self.automaticScale(shorterSides: train.samples.map { Swift.min($0.width, $0.height) }, resizedTo: 800)
    {
      print(automatic.note)
      scale = automatic.scale
    }
    var recipe = TrainingRecipe.reference(for: model)
    recipe.batchSize = batchSize
    recipe.seed = seed
    recipe.emaDecay = emaDecay
    recipe.precision = precision
    if let epochs {
      recipe.epochs = epochs
      if recipe.secondLearningRateDropEpoch != nil {
        // Two drops (RetinaNet's steps at 8 and 11 of 12) keep their places in the schedule.
        recipe.learningRateDropEpoch = Swift.max(1, epochs * 2 / 3)
        let second = epochs * 11 / 12
        recipe.secondLearningRateDropEpoch = second > recipe.learningRateDropEpoch ? second : nil
      } else {
        recipe.learningRateDropEpoch = Swift.max(1, epochs * 4 / 5)
      }
    }
    if let learningRateDropEpoch { recipe.learningRateDropEpoch = learningRateDropEpoch }
    if let learningRate {
      recipe.backboneLearningRate *= learningRate / recipe.learningRate
      recipe.learningRate = learningRate
    }
    // Without starting weights the backbone is trained from scratch: trainable batch norm, the full
    // learning rate, nothing frozen. The reference recipes assume an ImageNet-pretrained backbone.
    let fromScratch = initFrom == nil && backboneWeights == nil && !(overrides.contains { $0.hasPrefix("backbone.frozen_batch_norm") })
    if fromScratch {
      recipe.backboneLearningRate = recipe.learningRate
      recipe.freezeBackboneStem = false
    }
    let detector = try makeDetector(classCount: train.categories.count, fromScratch: fromScratch)
    if let initFrom { try initialize(detector, from: initFrom) }
    if let backboneWeights, !resume { try initializeBackbone(detector, from: backboneWeights) }
    let shard = group.map { DetectionLoader.Shard(index: $0.rank, count: $0.worldSize, equalLength: true) } ?? .whole
    let trainLoader = DetectionLoader(
      dataset: train, transform: .scaled(.training, by: scale, augmentation: augmentation), batchSize: batchSize, shuffle: true, seed: seed, dropLast: false,
      padToMultipleOf: detector.inputSizeDivisor, shard: shard, pinMemory: device.isCUDA)
    var validation: (loader: DetectionLoader, annotations: URL)?
    if let validationFile {
      let set = try DetectionDataset(annotationsFile: validationFile, imageDirectory: imageFolder, policy: policy)
      validation = (
        DetectionLoader(
          dataset: set, transform: .scaled(.evaluation, by: scale), batchSize: batchSize, shuffle: false, seed: seed,
          padToMultipleOf: detector.inputSizeDivisor, pinMemory: device.isCUDA),
        validationFile
      )
    }
    // The largest batch the augmentation can make: the largest image at the largest scale, every image padded to it.
    let transform = trainLoader.transform
    let largestScale = transform.augmentation == .flip ? transform.evaluationSize : (transform.scales.max() ?? transform.evaluationSize)
    let largest = train.samples.map {
      DETRTransform.outputSize(width: $0.width, height: $0.height, shorterSide: largestScale, maxSize: transform.maxSize)
    }.max { $0.width * $0.height < $1.width * $1.height }
    // Weights (and with them the optimizer state and EMA the trainer makes) on the device; batches follow.
    detector.to(device: device)
    if let largest, !device.isCUDA {
      Trainer.prepareForTraining(detector, recipe: recipe)
      try MemoryEstimate.lowerBound(
        for: detector, batch: Swift.min(batchSize, train.samples.count), height: largest.height, width: largest.width, training: true
      ).check(
        "training batch \(batchSize) at up to \(largest.width)×\(largest.height)", advice: "lower --batch-size or --image-scale")
    }
    let trainer = try Trainer(
      detector: detector, categories: train.categories, recipe: recipe, trainLoader: trainLoader, validation: validation,
      output: URL(fileURLWithPath: output), processGroup: group)
    trainer.maxIterations = maxIterations
    // A preset changed by --set is a config of its own, not the preset.
    trainer.preset = config == nil && overrides.isEmpty ? preset : nil
    trainer.checkpointEvery = checkpointEvery
    trainer.logEvery = logEvery
    try trainer.writeRunConfig(extra: ["settings": recordedSettings, "changes": changes])
    if resume {
      guard try trainer.resume() else { throw ValidationError("--resume: \(output) has no checkpoint to continue from") }
      print("resumed at epoch \(trainer.position.epoch + 1), step \(trainer.position.step)")
    }
    if !resume {
      print(
        Self.startSummary(
          model: "\(model.rawValue) \(config.map { "from \(URL(fileURLWithPath: $0).lastPathComponent)" } ?? preset)", parameters: detector.parameters().reduce(0) { $0 + $1.elementCount },
          device: "\(device)", precision: precision.rawValue,
          train: (train.samples.count, train.samples.reduce(0) { $0 + $1.labels.count }),
          validation: validation.map { ($0.loader.dataset.samples.count, $0.loader.dataset.samples.reduce(0) { $0 + $1.labels.count }) },
          categories: train.categories.count, input: trainer.input, batchSize: batchSize * (group?.worldSize ?? 1), epochs: recipe.epochs,
          steps: Swift.min(maxIterations ?? .max, recipe.epochs * trainLoader.batchesPerEpoch), output: output))
    }
    try trainer.run(progress: isMain ? Trainer.printProgress : { _, _ in })
    guard isMain else { return }
    let best = FileManager.default.fileExists(atPath: URL(fileURLWithPath: output).appendingPathComponent("best").path)
    Trainer.printProgress(Self.endLine(steps: trainer.position.step, output: output, bestAP: trainer.position.bestAP, hasBest: best), kind: .report)
  }

  /// The scale to train a user's images at when `--image-scale` is not given: DETR's (1, an 800-pixel
  /// shorter side) unless the images' typical shorter side (the median) is less than half or more than
  /// twice that, in which case their own size, with a note saying so. A model trained at a scale far from
  /// its images' learns slowly (a 6× upscale of small images) or blindly (a heavy downscale), and is
  /// later run at that scale too (checkpoints record it).
  static func automaticScale(shorterSides: [Int], resizedTo size: Int) -> (scale: Double, note: String)? {
    guard !shorterSides.isEmpty else { return nil }
    let median = shorterSides.sorted()[shorterSides.count / 2]
    let factor = Double(size) / Double(median)
    guard factor >= 2 || factor <= 0.5 else { return nil }
    let scale = (Double(median) / 800 * 1000).rounded() / 1000
    return (
      scale,
      "training near the images' own size: their shorter sides are about \(median) pixels, and DETR's \(size) would scale them ×\(String(format: "%.1f", factor)); "
        + "so --image-scale \(scale) (pass --image-scale 1 for DETR's size)"
    )
  }

  /// The images folder, annotation files and image scale: the user's, or the synthetic dataset made once in a cache folder.
  func dataset() throws -> (URL, URL, URL?, Double) {
    if let data, let trainAnnotations {
      return (
        URL(fileURLWithPath: data), URL(fileURLWithPath: trainAnnotations), validationAnnotations.map(URL.init(fileURLWithPath:)),
        imageScale ?? 1
      )
    }
    let cache = FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(
      ".cache/swift-detr/shapes-v\(SyntheticShapes.generatorVersion)-\(syntheticImages)-\(syntheticSize)-\(syntheticObjects.rawValue)-0")
    if !FileManager.default.fileExists(atPath: cache.appendingPathComponent("annotations/val.json").path) {
      print("synthesizing the built-in dataset (\(syntheticImages) images) into \(cache.path)")
      try SyntheticShapes.generate(to: cache, images: syntheticImages, size: syntheticSize, seed: 0, objectSizes: syntheticObjects)
    }
    return (
      cache.appendingPathComponent("images"), cache.appendingPathComponent("annotations/train.json"),
      cache.appendingPathComponent("annotations/val.json"),
      // The images are used near their own size: DETR's 800-pixel recipe scaled to them.
      imageScale ?? Double(syntheticSize) / 800
    )
  }

  /// Loads the weights that fit from another checkpoint of the same family, reporting the rest.
  func initialize(_ detector: any Detector, from folder: String) throws {
    let source = try DetectorCheckpoint.load(URL(fileURLWithPath: folder))
    guard source.detector.kind == detector.kind else {
      throw ValidationError(
        "--init-from \(folder) holds a \(source.detector.kind.rawValue) model; this run trains \(detector.kind.rawValue)")
    }
    let weights = Dictionary(source.detector.stateDict().map { ($0.key, $0.tensor) }, uniquingKeysWith: { first, _ in first })
    let total = detector.stateDict().count
    let report = try detector.load(stateDict: weights, strict: false)
    guard report.loaded.count * 2 >= total else {
      throw ValidationError(
        "--init-from \(folder) fits only \(report.loaded.count) of \(total) tensors: its architecture differs from this run's; choose the matching --preset or --config\n\(report.summaryNaming(atMost: 5))"
      )
    }
    print(
      "initialized \(report.loaded.count) of \(total) tensors from \(folder)"
        + (report.isComplete ? "" : "; not loaded:\n\(report.summaryNaming(atMost: 10))"))
  }

  /// Loads ImageNet weights into the detector's ResNet.
  func initializeBackbone(_ detector: any Detector, from file: String) throws {
    guard let resnet = detector.backboneNetwork else {
      throw ValidationError("--backbone-weights: \(detector.kind.rawValue) has no ResNet backbone to load into")
    }
    let report = try BackboneWeights.load(URL(fileURLWithPath: file), into: resnet)
    print(
      "initialized the backbone from \(file) (\(report.layout) layout): \(report.loaded) tensors"
        + (report.classifier.isEmpty ? "" : "; the classifier (\(report.classifier.joined(separator: ", "))) is not used"))
  }

  func makeDetector(classCount: Int, fromScratch: Bool) throws -> any Detector {
    try ModelChoice(kind: model, preset: preset, configFile: config, overrides: overrides)
      .makeDetector(classCount: classCount, trainBatchNorm: fromScratch)
  }
}
