import ArgumentParser
import COCO
import Detection
import Detectors
import Foundation
import Torch
import TorchNN
import Training

/// `detr benchmark`: inference or training-step latency of a detector on random images.
struct BenchmarkCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "benchmark",
    abstract: "Measure inference (or training-step) latency, throughput and peak memory of a detector.")

  @Option(help: "The detector family (with --preset).")
  var model: ModelKind = .deformableDETR

  @Option(help: "A preset of the family.")
  var preset = "r50"

  @Option(help: ArgumentHelp("An architecture config JSON of the family, instead of a preset.", valueName: "FILE.json"))
  var config: String?

  @Option(
    name: .customLong("set"),
    help: ArgumentHelp("Override a config field, e.g. transformer.queries=50 (repeatable).", valueName: "key=value"))
  var overrides: [String] = []

  @Option(help: ArgumentHelp("A checkpoint to benchmark instead of a preset.", valueName: "DIR"))
  var weights: String?

  @Option(name: .customLong("image-size"), help: "Image side in pixels (the height, when --image-width is given).")
  var imageSize = 512

  @Option(name: .customLong("image-width"), help: "Image width in pixels, for non-square images (default: --image-size).")
  var imageWidth: Int?

  @Option(name: .customLong("batch-size"), help: "Images per call.")
  var batchSize = 1

  @Flag(help: "Time a training step (forward, loss, backward, optimizer) instead of inference.")
  var train = false

  @Flag(name: .customLong("freeze-backbone"), help: "With --train, freeze the whole backbone (what transformers does with its own ResNet).")
  var freezeBackbone = false

  @Option(help: "Timed iterations (after 2 warm-up iterations).")
  var iterations = 10

  @Option(help: "Intra-op threads (default: libtorch's choice).")
  var threads: Int?

  @Option(name: .customLong("json"), help: ArgumentHelp("Write the numbers here.", valueName: "OUT.json"))
  var jsonPath: String?

  @Option(
    name: .customLong("nproc-per-node"),
    help: ArgumentHelp(
      "With --train, time data-parallel steps in this many worker processes (Gloo; each with --batch-size images and the cores shared out): prints the global throughput and the gradient all-reduce's time per step.",
      valueName: "N"))
  var nprocPerNode = 1

  @Option(help: "Arithmetic of the forward pass: fp32, or bf16 (bfloat16 autocast; fast on CPUs with bfloat16 instructions, very slow without).")
  var precision: Precision = .fp32

  @Option(help: deviceHelp)
  var device: Device?

  func validate() throws {
    guard imageSize >= 32 else { throw ValidationError("--image-size must be at least 32, got \(imageSize)") }
    if let imageWidth, imageWidth < 32 { throw ValidationError("--image-width must be at least 32, got \(imageWidth)") }
    if let threads, !(1...1024).contains(threads) { throw ValidationError("--threads must be between 1 and 1024, got \(threads)") }
    guard (1...1024).contains(nprocPerNode) else { throw ValidationError("--nproc-per-node must be between 1 and 1024, got \(nprocPerNode)") }
    guard nprocPerNode == 1 || train else { throw ValidationError("--nproc-per-node times training steps: add --train") }
    guard batchSize > 0, iterations > 0 else { throw ValidationError("--batch-size and --iterations must be positive") }
    guard weights == nil || (config == nil && overrides.isEmpty) else {
      throw ValidationError("--weights brings its own architecture; leave out --config and --set")
    }
    if weights == nil && config == nil { try ModelChoice.checkPreset(preset, of: model) }
  }

  func run() throws {
    if let threads { Torch.threadCount = threads }
    let worker = try WorkerEnvironment.current()
    if nprocPerNode > 1 && worker == nil {
      try WorkerLauncher(count: nprocPerNode, arguments: WorkerLauncher.workerArguments(Array(CommandLine.arguments.dropFirst()))).run()
      return
    }
    if worker != nil { WorkerLauncher.stopsWithItsLauncher() }
    let device = try Device.resolve(self.device, localRank: worker.flatMap { $0.worldSize > 1 ? $0.localRank : nil })
    let group = try worker.flatMap {
      $0.worldSize > 1 ? try $0.join(backend: device.isCUDA ? .nccl : .gloo, timeout: .seconds(600), device: device) : nil
    }
    ProcessGroup.current = group
    defer { ProcessGroup.current = nil }
    let isMain = (group?.rank ?? 0) == 0
    let worldSize = group?.worldSize ?? 1
    Torch.manualSeed(0)
    let detector =
      try weights.map { try DetectorCheckpoint.load(URL(fileURLWithPath: $0)).detector }
      ?? ModelChoice(kind: model, preset: preset, configFile: config, overrides: overrides).makeDetector()
    let width = imageWidth ?? imageSize
    detector.to(device: device)
    if train {
      detector.train()
      if freezeBackbone { detector.backboneNetwork?.freeze() }
    }
    let memoryBound = MemoryEstimate.lowerBound(for: detector, batch: batchSize, height: imageSize, width: width, training: train)
    if !device.isCUDA {
      try memoryBound.check("batch \(batchSize) at \(imageSize)×\(width)\(train ? ", training" : "")", advice: "lower --image-size or --batch-size")
    }
    // Drawn on the CPU (the same images on every device), then moved.
    let images = Tensor.randn([batchSize, 3, imageSize, width]).to(device: device)
    let step: () throws -> Void
    var phases: [[(name: String, milliseconds: Double)]] = []
    var allReduceAlone: [Double] = []
    if train {
      let optimizer = AdamW(groups: [ParameterGroup(parameters: detector.trainableParameters(), learningRate: 1e-5, weightDecay: 1e-4)])
      // Data-parallel as training does it: rank 0's weights everywhere, gradients averaged by c10d's reducer
      // during the backward pass. The same all-reduce alone (after the step, not timed in it) says what the
      // communication costs without the overlap.
      let trainable = optimizer.groups.flatMap { $0.parameters.map(\.tensor) }
      let parallel = try group.map { group in
        try withNoGrad { try group.broadcast(detector.stateDict().sorted { $0.key < $1.key }.map(\.tensor)) }
        return (reducer: try GradientReducer(group: group, parameters: trainable), alone: GradientAverager(parameters: trainable, group: group))
      }
      let targets = (0..<batchSize).map { _ in
        MatchTarget(labels: Tensor([0, 1] as [Int]), boxes: Tensor([0.3, 0.3, 0.2, 0.2, 0.6, 0.6, 0.3, 0.4] as [Float], shape: [2, 4]))
      }
      let batch = DetectorBatch(unpaddedImages: images, targets: targets).to(device: device)
      step = {
        var clock = PhaseClock(device: device)
        let loss = try precision.run(on: device) { try detector.losses(for: batch) }
        _ = loss.total.item(Float.self)
        clock.lap("forward, matching and loss")
        optimizer.zeroGrad()
        try parallel?.reducer.prepareForBackward([loss.total])
        loss.total.backward()
        clock.lap(parallel == nil ? "backward" : "backward with the overlapped all-reduce")
        clipGradientNorm(detector.parameters(), maxNorm: 0.1)
        optimizer.step()
        clock.lap("clipping and optimizer")
        if let parallel {
          try parallel.alone.average()
          allReduceAlone.append(parallel.alone.lastSeconds * 1000)
        }
        phases.append(clock.laps)
      }
    } else {
      detector.eval()
      let batch = DetectorBatch(unpaddedImages: images)
      if let staged = detector as? any StagedDetector {
        step = {
          var clock = PhaseClock(device: device)
          withInferenceMode { precision.run(on: device) { _ = staged.detect(batch, lap: { clock.lap($0) }) } }
          phases.append(clock.laps)
        }
      } else {
        step = { withInferenceMode { precision.run(on: device) { _ = detector.detect(batch) } } }
      }
    }
    for _ in 0..<2 { try step() }
    phases.removeAll()
    allReduceAlone.removeAll()
    var times: [Double] = []
    for _ in 0..<iterations {
      let start = DispatchTime.now().uptimeNanoseconds
      try step()
      device.synchronize()
      times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
    }
    let sorted = times.sorted()
    let p50 = sorted[sorted.count / 2]
    let p95 = sorted[Swift.min(sorted.count - 1, Int((Double(sorted.count) * 0.95).rounded(.up)) - 1)]
    let throughput = Double(batchSize * worldSize) / (times.reduce(0, +) / Double(times.count) / 1000)
    let peak = ProcessMemory.peakResidentMiB
    let gpuPeak = device.isCUDA ? Torch.cudaPeakAllocatedMiB(device) : nil
    let phaseMedians = PhaseClock.medians(of: phases)
    guard isMain else { return }
    let what = train ? "training step" : "inference"
    let parameterCount = detector.parameters().reduce(0) { $0 + $1.elementCount }
    print(
      "\(detector.kind.rawValue) \(weights ?? config ?? preset) (\(String(format: "%.2f", Double(parameterCount) / 1e6)) M parameters), \(what), "
        + "batch \(batchSize), \(imageSize)x\(width) (height x width), \(precision.rawValue), on \(device), \(Torch.threadCount) threads"
        + (worldSize > 1 ? " in each of \(worldSize) processes (global batch \(batchSize * worldSize))" : ""))
    print(String(format: "latency p50 %.1f ms, p95 %.1f ms; %.2f images/s; peak resident memory %.0f MiB", p50, p95, throughput, peak))
    if let gpuPeak {
      print(String(format: "peak GPU memory allocated by libtorch: %.0f MiB", gpuPeak))
    } else {
      print("memory needed: \(memoryBound) by the up-front estimate")
    }
    let allReduce = allReduceAlone.isEmpty ? nil : allReduceAlone.sorted()[allReduceAlone.count / 2]
    if let allReduce {
      print(
        String(
          format: "gradient all-reduce: %.1f ms per step measured alone (median), %.1f%% of the median step; in the step it overlaps the backward pass",
          allReduce, 100 * allReduce / p50))
    }
    if !phaseMedians.isEmpty {
      print("median per phase: " + phaseMedians.map { String(format: "%@ %.1f ms", $0.name, $0.milliseconds) }.joined(separator: ", "))
    }
    if let jsonPath {
      let report: [String: Any] = [
        "model": detector.kind.rawValue, "preset": weights ?? preset, "mode": train ? "train" : "inference", "precision": precision.rawValue, "device": device.description, "gpu_peak_allocated_mib": gpuPeak ?? 0, "batch_size": batchSize,
        "image_size": imageSize, "image_width": width, "threads": Torch.threadCount, "processes": worldSize,
        "all_reduce_ms_p50": allReduce ?? 0, "memory_lower_bound_mib": memoryBound.total / Double(1 << 20), "parameters": parameterCount, "latency_ms_p50": p50,
        "latency_ms_p95": p95,
        "images_per_second": throughput,
        "peak_rss_mib": peak, "latencies_ms": times,
        "phases_ms_p50": Dictionary(phaseMedians.map { ($0.name, $0.milliseconds) }, uniquingKeysWith: { first, _ in first }),
      ]
      try JSONSerialization.data(withJSONObject: report, options: [.prettyPrinted, .sortedKeys]).write(
        to: URL(fileURLWithPath: jsonPath), options: .atomic)
    }
  }
}

/// Wall time between successive points of one iteration, by phase name.
/// On a GPU each lap first waits for the work queued so far, so that it is counted in its own phase.
struct PhaseClock {
  let device: Device
  private var last = DispatchTime.now().uptimeNanoseconds
  private(set) var laps: [(name: String, milliseconds: Double)] = []

  init(device: Device = .cpu) { self.device = device }

  mutating func lap(_ name: String) {
    device.synchronize()
    let now = DispatchTime.now().uptimeNanoseconds
    laps.append((name, Double(now - last) / 1e6))
    last = now
  }

  /// The median of each phase over iterations (phases in the order of the first iteration).
  static func medians(of iterations: [[(name: String, milliseconds: Double)]]) -> [(name: String, milliseconds: Double)] {
    guard let first = iterations.first else { return [] }
    return first.indices.map { index in
      let values = iterations.map { $0[index].milliseconds }.sorted()
      return (first[index].name, values[values.count / 2])
    }
  }
}
