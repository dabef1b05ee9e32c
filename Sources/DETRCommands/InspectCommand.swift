import ArgumentParser
import COCO
import Foundation

/// `detr data inspect`: what a COCO detection file holds and what is wrong with it, and its ground
/// truth drawn on a few images.
struct InspectCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "inspect",
    abstract: "Count a COCO detection file's images and boxes per category and size, and name every problem in it.",
    discussion: """
      Images without annotations are counted (evaluation scores them; training leaves them out unless \
      `detr train --keep-empty`). Problems (invalid or empty boxes, unknown image or category ids, duplicate \
      ids, missing image files) are listed with the ids concerned. With --draw N the ground truth is drawn on \
      the first N images into --output, keeping each image's folder under --images.
      """)

  @Option(help: ArgumentHelp("The COCO annotation file.", valueName: "A.json"))
  var annotations: String

  @Option(help: ArgumentHelp("The folder the file's image names are relative to.", valueName: "DIR"))
  var images: String

  @Option(help: "Draw the ground truth on this many images (0: none).")
  var draw = 0

  @Option(help: ArgumentHelp("Where to write the drawn images (a new or empty folder).", valueName: "DIR"))
  var output: String?

  func validate() throws {
    guard draw >= 0 else { throw ValidationError("--draw must be 0 or more, got \(draw)") }
    if draw > 0 && output == nil { throw ValidationError("--draw needs --output, the folder to write the drawn images to") }
    if let output {
      let out = URL(fileURLWithPath: output).standardizedFileURL.path
      let imageFolder = URL(fileURLWithPath: images).standardizedFileURL.path
      if out == imageFolder || out.hasPrefix(imageFolder + "/") || imageFolder.hasPrefix(out + "/") {
        throw ValidationError("--output \(output) overlaps --images \(images); drawn copies would mix with the originals")
      }
    }
  }

  func run() throws {
    let imageFolder = URL(fileURLWithPath: images)
    // The output folder is checked (and made) before the report, so that a bad one stops before any printing.
    let outputURL = try output.map { try Self.prepareOutput($0) }
    let inspection = try DatasetInspection(annotationsFile: URL(fileURLWithPath: annotations), imageDirectory: imageFolder)
    print(inspection.text)
    guard draw > 0, let output, let outputURL else { return }
    let categories = inspection.dataset.categories
    var written = 0
    for sample in inspection.dataset.samples.prefix(draw) {
      var image = try Image(contentsOf: sample.url)
      image.draw(
        zip(sample.boxes, sample.labels).map { box, label in DrawnBox(box: box, classIndex: label, caption: categories.name(ofIndex: label)) })
      // The image's path under --images, kept under --output so that equal names in two folders stay apart.
      let relative = sample.url.standardizedFileURL.path.replacingOccurrences(of: imageFolder.standardizedFileURL.path + "/", with: "")
      let destination = outputURL.appendingPathComponent(relative)
      try FileManager.default.createDirectory(at: destination.deletingLastPathComponent(), withIntermediateDirectories: true)
      try image.write(to: destination)
      written += 1
    }
    print("drew the ground truth of \(written) images into \(output)")
  }

  /// `--output` as a new or empty folder, made now; an error naming it otherwise.
  static func prepareOutput(_ output: String) throws -> URL {
    let url = URL(fileURLWithPath: output)
    var isFolder: ObjCBool = false
    if FileManager.default.fileExists(atPath: url.path, isDirectory: &isFolder) {
      guard isFolder.boolValue else { throw ValidationError("--output \(output) is a file; give a new or empty folder") }
      if let existing = try? FileManager.default.contentsOfDirectory(atPath: url.path), !existing.isEmpty {
        throw ValidationError("--output \(output) already holds files; give a new or empty folder")
      }
      return url
    }
    do {
      try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    } catch {
      throw ValidationError("--output \(output) cannot be made (\(error.localizedDescription)); give a folder that can be written")
    }
    return url
  }
}
