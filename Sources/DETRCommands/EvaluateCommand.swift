import ArgumentParser
import COCO
import COCOEval
import Foundation
import Torch
import Training

/// `detr evaluate`: COCO bbox metrics of a results file, equal to pycocotools.
struct EvaluateCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "evaluate",
    abstract: "Evaluate COCO-format detections against ground truth (bbox AP/AR, equal to pycocotools).",
    discussion: """
      Either a results file (--detections DETS.json, a COCO results list: [{"image_id", "category_id",
      "bbox": [x, y, w, h], "score"}, ...]) or a model (--weights DIR --images DIR) is evaluated.
      Prints pycocotools' 12 summary lines and a per-category AP table. --json writes
      {"stats": [12 numbers], "per_category": {"<category id>": AP}} at full precision.
      """)

  @Option(name: .customLong("annotations"), help: ArgumentHelp("The ground truth: a COCO instances file.", valueName: "GT.json"))
  var annotationsPath: String

  @Option(name: .customLong("detections"), help: ArgumentHelp("The detections: a COCO results file.", valueName: "DETS.json"))
  var detectionsPath: String?

  @Option(help: ArgumentHelp("A checkpoint to run instead of reading detections (ours or a transformers folder).", valueName: "DIR"))
  var weights: String?

  @Option(help: ArgumentHelp("The images of the ground truth, with --weights.", valueName: "DIR"))
  var images: String?

  @Option(
    name: .customLong("detections-out"), help: ArgumentHelp("With --weights, also write the detections here.", valueName: "DETS.json"))
  var detectionsOut: String?

  @Option(name: .customLong("image-scale"), help: "With --weights: scale of the evaluation size (800 shorter side at 1; default: the input the checkpoint was trained at, else 1).")
  var imageScale: Double?

  @Option(help: ArgumentHelp("With --weights: " + resizeHelp.abstract, valueName: "resizing"))
  var resize: DETRTransform.Resizing?

  @Option(help: "With --weights, the forward pass's arithmetic: fp32, or bf16 (bfloat16 autocast; fast on CPUs with bfloat16 instructions, very slow without).")
  var precision: Precision = .fp32

  @Option(help: ArgumentHelp("With --weights, where the model runs: cpu, cuda or cuda:N (default: the first GPU when libtorch has one, else the CPU).", valueName: "device"))
  var device: Device?

  func validate() throws {
    if let imageScale, !(imageScale.isFinite && imageScale >= 0.02 && imageScale <= 8) {
      throw ValidationError("--image-scale must be between 0.02 and 8 (1 is DETR's 800-pixel shorter side), got \(imageScale)")
    }
    guard (1...256).contains(batchSize) else { throw ValidationError("--batch-size must be between 1 and 256, got \(batchSize)") }
    switch (detectionsPath, weights, images) {
    case (.some, nil, nil): break
    case (nil, .some, .some): break
    default: throw ValidationError("give either --detections, or --weights with --images")
    }
    if device != nil && weights == nil { throw ValidationError("--device says where --weights runs; with --detections no model runs") }
  }

  @Option(name: .customLong("batch-size"), help: "With --weights: images per forward pass; only images of one resized size share a batch, so the detections are those of one image at a time.")
  var batchSize = 4

  @Option(name: .customLong("json"), help: ArgumentHelp("Also write the numbers to this file.", valueName: "OUT.json"))
  var jsonPath: String?

  @Flag(help: "Replace existing --json and --detections-out files.")
  var overwrite = false

  /// Outputs must not be inputs (the ground truth, the detections, a file of the checkpoint or an image), nor
  /// replace an existing file without --overwrite.
  func checkOutputs() throws {
    let inputs = [annotationsPath, detectionsPath].compactMap { $0 }.map { URL(fileURLWithPath: $0).standardizedFileURL.path }
    let folders = [weights, images].compactMap { $0 }.map { URL(fileURLWithPath: $0).standardizedFileURL.path }
    for (flag, path) in [("--json", jsonPath), ("--detections-out", detectionsOut)] {
      guard let path else { continue }
      let target = URL(fileURLWithPath: path).standardizedFileURL.path
      if inputs.contains(target) { throw ValidationError("\(flag) \(path) is an input of this evaluation; choose another file") }
      if let folder = folders.first(where: { target.hasPrefix($0 + "/") }) {
        throw ValidationError("\(flag) \(path) lies in the input folder \(folder); choose another file")
      }
      if FileManager.default.fileExists(atPath: target) && !overwrite {
        throw ValidationError("\(flag) \(path) already exists; pass --overwrite to replace it, or choose another file")
      }
    }
    if let jsonPath, let detectionsOut, URL(fileURLWithPath: jsonPath).standardizedFileURL == URL(fileURLWithPath: detectionsOut).standardizedFileURL {
      throw ValidationError("--json and --detections-out name the same file \(jsonPath)")
    }
  }

  func run() throws {
    // The device first: a machine that cannot run the model stops before any work.
    if weights != nil { _ = try Device.resolve(device) }
    try checkOutputs()
    let groundTruth = try GroundTruth.load(contentsOf: URL(fileURLWithPath: annotationsPath))
    let detections: [DetectedBox]
    if let detectionsPath {
      detections = try DetectedBox.load(contentsOf: URL(fileURLWithPath: detectionsPath), checkedAgainst: groundTruth)
    } else {
      detections = try runModel(groundTruth: groundTruth)
    }
    let result = COCOEvaluator().evaluate(groundTruth: groundTruth, detections: detections)
    print(result.summaryText)
    print("")
    print(result.perCategoryTable)
    if let jsonPath {
      try EvaluationReport(result).write(to: URL(fileURLWithPath: jsonPath))
    }
  }
}

extension EvaluateCommand {
  /// Detections of the checkpoint on the ground truth's images (evaluation transform, in batches of
  /// equal-size images).
  func runModel(groundTruth: GroundTruth) throws -> [DetectedBox] {
    let device = try Device.resolve(self.device)
    let loaded = try CheckpointInput.load(weights!)
    loaded.detector.to(device: device)
    // The checkpoint's classes must be the ground truth's categories (by id), or every AP would be 0.
    let known = Set(loaded.categories.entries.map(\.id))
    let unknown = groundTruth.categories.filter { !known.contains($0.id) }
    guard unknown.isEmpty else {
      let names = unknown.prefix(8).map { "\($0.id) \($0.name)" }.joined(separator: ", ")
      throw ValidationError(
        "--weights \(weights!) does not know \(unknown.count) categories of --annotations \(annotationsPath) (\(names)\(unknown.count > 8 ? ", ..." : "")); evaluate a checkpoint trained on these categories")
    }
    let dataset = try DetectionDataset(
      annotationsFile: URL(fileURLWithPath: annotationsPath), imageDirectory: URL(fileURLWithPath: images!))
    // Results use the checkpoint's category ids; the dataset's own map only drives its targets.
    var transform: DETRTransform
    if let imageScale {
      transform = DETRTransform.scaled(.evaluation, by: imageScale)
      transform.resizing = resize ?? loaded.defaultInput.resizing
    } else {
      let (input, note) = CheckpointInput.resolve(size: nil, maxSize: nil, resize: resize, for: loaded)
      if let note { print(note.replacingOccurrences(of: "--size overrides", with: "--image-scale overrides")) }
      transform = input.evaluationTransform
    }
    let loader = DetectionLoader(
      dataset: dataset, transform: transform, batchSize: batchSize, shuffle: false, seed: 0,
      padToMultipleOf: loaded.detector.inputSizeDivisor, pinMemory: device.isCUDA)
    let detections = try DetectorEvaluation.detections(of: loaded.detector, loader: loader, categories: loaded.categories, precision: precision, equalSizeBatches: true)
    if let detectionsOut {
      let encoder = JSONEncoder()
      encoder.outputFormatting = [.sortedKeys]
      try encoder.encode(detections).write(to: URL(fileURLWithPath: detectionsOut), options: .atomic)
    }
    return detections
  }
}

/// The machine-readable results of an evaluation.
struct EvaluationReport: Encodable {
  var stats: [Double]
  var perCategory: [String: Double]

  init(_ result: EvaluationResult) {
    stats = result.stats
    perCategory = Dictionary(uniqueKeysWithValues: result.averagePrecisionPerCategory.map { (String($0.key), $0.value) })
  }

  enum CodingKeys: String, CodingKey {
    case stats
    case perCategory = "per_category"
  }

  func write(to url: URL) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    do {
      try encoder.encode(self).write(to: url, options: .atomic)
    } catch {
      throw CommandFailure("cannot write \(url.path): \(error.localizedDescription)")
    }
  }
}
