import ArgumentParser
import COCO
import COCOEval
import Detection
import Detectors
import Foundation
import Torch
import Training

/// `detr predict`: detections on images with a checkpoint (ours or a transformers folder).
struct PredictCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "predict",
    abstract: "Detect objects in images with a checkpoint, write COCO results and images with their boxes drawn.",
    discussion: """
      Images are resized to the input the checkpoint was trained at (recorded in checkpoints that swift-detr trains; otherwise shorter side 800, longer at most 1333; --size, --max-size and --resize override it) and normalized with ImageNet statistics. A training run's folder stands for its best/ checkpoint (else last/).
      --json writes the COCO results list: image_id, category_id (the checkpoint's original ids), bbox [x, y, w, h] in pixels of the original image, score; and beside it <name>.image_ids.json, each file's image id.
      Image ids: when every file name ends in a number (000001.jpg, COCO_val2014_000000000042.jpg → 42) and no two numbers are equal, that number (COCO's own ids); otherwise 1, 2, ... in the order the files are listed (folders in name order). Drawn images keep their folders relative to the inputs' common folder and their format.
      Every image is read before any detection: an unreadable one stops the run naming it, or with --skip-bad-images is listed and left out. Outputs never replace an input, and replace earlier outputs only with --overwrite.
      """)

  @Option(
    help: ArgumentHelp("A swift-detr checkpoint folder or a transformers folder (config.json + model.safetensors).", valueName: "DIR"))
  var weights: String

  @Argument(help: ArgumentHelp("Images (JPEG or PNG), or folders of them.", valueName: "IMAGE_OR_FOLDER"))
  var inputs: [String]

  @Option(help: "Keep detections scoring above this (0 keeps all of the top detections).")
  var threshold: Float = 0.5

  @Option(name: .customLong("max-detections"), help: "At most this many detections per image.")
  var maxDetections = 100

  @Option(name: .customLong("batch-size"), help: "Images per forward pass; only images of one resized size share a batch, so each image's detections are its own alone.")
  var batchSize = 4

  @Option(name: .customLong("json"), help: ArgumentHelp("Write the COCO results list here.", valueName: "OUT.json"))
  var jsonPath: String?

  @Option(name: .customLong("output-dir"), help: ArgumentHelp("Write each image with its boxes drawn here.", valueName: "DIR"))
  var outputDirectory: String?

  @OptionGroup var inference: RunOptions

  @Flag(name: .customLong("skip-bad-images"), help: "Leave out (and list) images that cannot be read instead of stopping.")
  var skipBadImages = false

  @Flag(help: "Replace an existing --json file and drawn images of an earlier run.")
  var overwrite = false

  func validate() throws {
    guard (0...1).contains(threshold) else { throw ValidationError("--threshold must be between 0 and 1, got \(threshold)") }
    guard maxDetections > 0 else { throw ValidationError("--max-detections must be positive, got \(maxDetections)") }
    guard (1...256).contains(batchSize) else { throw ValidationError("--batch-size must be between 1 and 256, got \(batchSize)") }
  }

  func run() throws {
    let device = try Device.resolve(inference.device)
    let files = try Self.imageFiles(inputs)
    let ids = Self.imageIds(files)
    let root = Self.commonFolder(of: files)
    try checkOutputs(files: files, root: root)
    let loaded = try CheckpointInput.load(weights)
    let input = inference.input(for: loaded)
    // Every image is read first: one that cannot be stops the run before any work, or is left out.
    var images: [(URL, Int)] = []
    var bad: [String] = []
    var largest = (width: 0, height: 0, file: "")
    for (file, id) in zip(files, ids) {
      do {
        let image = try Image(contentsOf: file)
        images.append((file, id))
        let resized = input.evaluationTransform.evaluationOutputSize(width: image.width, height: image.height)!
        if resized.width * resized.height > largest.width * largest.height { largest = (resized.width, resized.height, file.lastPathComponent) }
      } catch {
        guard skipBadImages else { throw CommandFailure("\(error); fix or remove the image, or pass --skip-bad-images to leave such images out") }
        bad.append("\(error)")
      }
    }
    loaded.detector.to(device: device)
    if largest.width > 0 && !device.isCUDA {
      try MemoryEstimate.lowerBound(for: loaded.detector, batch: batchSize, height: largest.height, width: largest.width, training: false).check(
        "\(batchSize == 1 ? "" : "\(batchSize) images like ")\(largest.file), resized to \(largest.width)×\(largest.height)",
        advice: batchSize == 1 ? "lower --size (and --max-size)" : "lower --batch-size or --size (and --max-size)")
    }
    var predictor = ImagePredictor(
      loaded: loaded, shorterSide: input.shorterSide, maxSize: input.maxSize, threshold: threshold, maxDetections: maxDetections)
    (predictor.precision, predictor.resizing) = (inference.precision, input.resizing)
    var results: [DetectedBox] = []
    var mapping: [[String: Any]] = []
    // Chunks of a few batches: decoded on threads, then run in batches of equal-size images.
    let chunk = batchSize * 4
    for start in stride(from: 0, to: images.count, by: chunk) {
      let part = Array(images[start..<Swift.min(start + chunk, images.count)])
      for ((file, imageId), result) in zip(part, predictor.detect(part.map(\.0), batchSize: batchSize)) {
        let image: Image
        let detections: ImageDetections
        do {
          (image, detections) = try result.get()
        } catch {
          guard skipBadImages else { throw CommandFailure("\(error); fix or remove the image, or pass --skip-bad-images to leave such images out") }
          bad.append("\(error)")
          continue
        }
        results += detections.cocoResults(imageId: imageId, categories: loaded.categories)
        mapping.append(["file": Self.relativePath(of: file, under: root), "image_id": imageId])
        print("\(file.lastPathComponent): \(detections.scores.count) detections (image_id \(imageId))")
        if let outputDirectory {
          let destination = URL(fileURLWithPath: outputDirectory).appendingPathComponent(Self.relativePath(of: file, under: root))
          try FileManager.default.createDirectory(at: destination.deletingLastPathComponent(), withIntermediateDirectories: true)
          try predictor.drawn(image, detections).write(to: destination)
        }
      }
    }
    if let jsonPath {
      let url = URL(fileURLWithPath: jsonPath)
      let encoder = JSONEncoder()
      encoder.outputFormatting = [.sortedKeys]
      try encoder.encode(results).write(to: url, options: .atomic)
      try JSONSerialization.data(withJSONObject: mapping, options: [.prettyPrinted, .sortedKeys]).write(
        to: Self.mappingFile(for: url), options: .atomic)
    }
    if !bad.isEmpty {
      print("left out \(bad.count) images that cannot be read:\n" + bad.map { "  \($0)" }.joined(separator: "\n"))
    }
  }

  /// Where the file-name ↔ image-id list goes: beside the results, `<name>.image_ids.json`.
  static func mappingFile(for results: URL) -> URL {
    results.deletingPathExtension().appendingPathExtension("image_ids.json")
  }

  /// Each file's image id: the number its name ends in when all have one and no two are equal, else 1, 2, ...
  static func imageIds(_ files: [URL]) -> [Int] {
    let numbers = files.map { file -> Int? in
      let stem = file.deletingPathExtension().lastPathComponent
      let digits = stem.reversed().prefix { $0.isASCII && $0.isNumber }
      return digits.isEmpty || digits.count > 18 ? nil : Int(String(digits.reversed()))
    }
    if numbers.allSatisfy({ $0 != nil }), Set(numbers.map { $0! }).count == files.count { return numbers.map { $0! } }
    return files.indices.map { $0 + 1 }
  }

  /// The deepest folder holding every file.
  static func commonFolder(of files: [URL]) -> URL {
    var common = files.first.map { $0.standardizedFileURL.deletingLastPathComponent().pathComponents } ?? ["/"]
    for file in files.dropFirst() {
      let parts = file.standardizedFileURL.deletingLastPathComponent().pathComponents
      common = Array(zip(common, parts).prefix { $0.0 == $0.1 }.map(\.0))
    }
    return URL(fileURLWithPath: common.isEmpty ? "/" : NSString.path(withComponents: common))
  }

  static func relativePath(of file: URL, under root: URL) -> String {
    let path = file.standardizedFileURL.path
    let prefix = root.standardizedFileURL.path == "/" ? "/" : root.standardizedFileURL.path + "/"
    return path.hasPrefix(prefix) ? String(path.dropFirst(prefix.count)) : file.lastPathComponent
  }

  /// Outputs must not be inputs (an image, an input folder, the checkpoint), nor replace earlier outputs unless --overwrite.
  func checkOutputs(files: [URL], root: URL) throws {
    let inputFiles = Set(files.map(\.standardizedFileURL.path))
    let weightsFolder = URL(fileURLWithPath: weights).standardizedFileURL.path
    if let jsonPath {
      let url = URL(fileURLWithPath: jsonPath).standardizedFileURL
      for target in [url, Self.mappingFile(for: url).standardizedFileURL] {
        if inputFiles.contains(target.path) { throw ValidationError("--json \(jsonPath) is one of the input images; choose another file") }
        if target.path.hasPrefix(weightsFolder + "/") { throw ValidationError("--json \(jsonPath) lies in the checkpoint folder --weights \(weights); choose another file") }
        if FileManager.default.fileExists(atPath: target.path) && !overwrite {
          throw ValidationError("\(target.path) already exists; pass --overwrite to replace it, or choose another --json")
        }
      }
    }
    if let outputDirectory {
      let out = URL(fileURLWithPath: outputDirectory).standardizedFileURL.path
      if inputFiles.contains(where: { $0.hasPrefix(out + "/") }) {
        throw ValidationError("--output-dir \(outputDirectory) holds input images; drawn images would mix with or replace them")
      }
      if out == weightsFolder || out.hasPrefix(weightsFolder + "/") || weightsFolder.hasPrefix(out + "/") {
        throw ValidationError("--output-dir \(outputDirectory) overlaps the checkpoint folder --weights \(weights); choose another folder")
      }
      let existing = (try? FileManager.default.contentsOfDirectory(atPath: out)) ?? []
      if !existing.isEmpty && !overwrite {
        throw ValidationError("--output-dir \(outputDirectory) already holds files; pass --overwrite to replace drawn images of an earlier run, or choose another folder")
      }
    }
  }

  /// The image files named, folders expanded to their JPEG and PNG files in name order.
  static func imageFiles(_ inputs: [String]) throws -> [URL] {
    var files: [URL] = []
    for input in inputs {
      var isDirectory: ObjCBool = false
      guard FileManager.default.fileExists(atPath: input, isDirectory: &isDirectory) else {
        throw ValidationError("\(input) does not exist")
      }
      if isDirectory.boolValue {
        let names = try FileManager.default.contentsOfDirectory(atPath: input).filter {
          ["jpg", "jpeg", "png"].contains(($0 as NSString).pathExtension.lowercased())
        }
        guard !names.isEmpty else { throw ValidationError("\(input) holds no .jpg, .jpeg or .png files") }
        files += names.sorted().map { URL(fileURLWithPath: input).appendingPathComponent($0) }
      } else {
        files.append(URL(fileURLWithPath: input))
      }
    }
    return files
  }
}
