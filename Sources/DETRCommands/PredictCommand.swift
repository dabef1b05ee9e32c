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
      Images are resized as the reference does (shorter side 800, longer at most 1333) and normalized with ImageNet statistics.
      --json writes the COCO results list: image_id (the index in the order given, or the number a file is named by),
      category_id (the checkpoint's original ids), bbox [x, y, w, h] in pixels of the original image, score.
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

  @Option(name: .customLong("json"), help: ArgumentHelp("Write the COCO results list here.", valueName: "OUT.json"))
  var jsonPath: String?

  @Option(name: .customLong("output-dir"), help: ArgumentHelp("Write each image with its boxes drawn here.", valueName: "DIR"))
  var outputDirectory: String?

  @Option(help: "Shorter side the images are resized to.")
  var size = 800

  @Option(name: .customLong("max-size"), help: "Longest side at most this after resizing.")
  var maxSize = 1333

  func validate() throws {
    guard (0...1).contains(threshold) else { throw ValidationError("--threshold must be between 0 and 1, got \(threshold)") }
    guard maxDetections > 0 else { throw ValidationError("--max-detections must be positive, got \(maxDetections)") }
    guard size > 0, maxSize >= size else { throw ValidationError("--size must be positive and at most --max-size (\(size), \(maxSize))") }
  }

  func run() throws {
    let loaded = try DetectorCheckpoint.load(URL(fileURLWithPath: weights))
    let files = try Self.imageFiles(inputs)
    let predictor = ImagePredictor(loaded: loaded, shorterSide: size, maxSize: maxSize, threshold: threshold, maxDetections: maxDetections)
    var results: [DetectedBox] = []
    if let outputDirectory { try FileManager.default.createDirectory(atPath: outputDirectory, withIntermediateDirectories: true) }
    for (index, file) in files.enumerated() {
      let imageId = Int(file.deletingPathExtension().lastPathComponent) ?? index
      let (image, detections) = try predictor.detect(file, imageId: imageId)
      results += detections.cocoResults(imageId: imageId, categories: loaded.categories)
      print("\(file.lastPathComponent): \(detections.scores.count) detections")
      if let outputDirectory {
        try predictor.drawn(image, detections).write(
          to: URL(fileURLWithPath: outputDirectory).appendingPathComponent(file.deletingPathExtension().lastPathComponent + ".jpg"))
      }
    }
    if let jsonPath {
      let encoder = JSONEncoder()
      encoder.outputFormatting = [.sortedKeys]
      try encoder.encode(results).write(to: URL(fileURLWithPath: jsonPath), options: .atomic)
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
