import ArgumentParser
import COCO
import Foundation

/// `detr data ...`: dataset utilities.
struct DataCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "data", abstract: "Create and check datasets.", subcommands: [SynthesizeCommand.self, InspectCommand.self])
}

/// `detr data synthesize`: writes the built-in synthetic shapes dataset in COCO format.
struct SynthesizeCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "synthesize",
    abstract: "Write the built-in synthetic shapes dataset (JPEG images and COCO annotations).",
    discussion: "Writes DIR/images/*.jpg, DIR/annotations/train.json and DIR/annotations/val.json. The same seed gives the same bytes.")

  @Option(help: ArgumentHelp("The folder to write.", valueName: "DIR"))
  var output: String

  @Option(help: "Number of images (one in eight goes to the validation split).")
  var images = 1000

  @Option(help: "Width and height of the images in pixels.")
  var size = 320

  @Option(help: "Random seed.")
  var seed: UInt64 = 0

  @Option(help: "Object sizes: all (COCO's small, medium and large) or medium-large.")
  var objects: SyntheticShapes.ObjectSizes = .allAreaRanges

  @Flag(help: "Replace an earlier synthetic dataset in --output (its images/ and annotations/ are removed first).")
  var overwrite = false

  func validate() throws {
    guard images > 0 else { throw ValidationError("--images must be positive, got \(images)") }
    guard (64...4096).contains(size) else { throw ValidationError("--size must be between 64 and 4096, got \(size)") }
  }

  func run() throws {
    let folder = URL(fileURLWithPath: output)
    let existing = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
    if !existing.isEmpty {
      guard overwrite else {
        throw ValidationError("--output \(output) already holds files; choose a new or empty folder, or pass --overwrite to replace an earlier dataset there")
      }
      let foreign = existing.filter { !["images", "annotations"].contains($0) }
      guard foreign.isEmpty else {
        throw ValidationError("--output \(output) holds \(foreign.prefix(3).joined(separator: ", ")), which is not a synthetic dataset's; --overwrite replaces only images/ and annotations/")
      }
      for part in existing { try FileManager.default.removeItem(at: folder.appendingPathComponent(part)) }
    }
    let start = Date()
    let summary = try SyntheticShapes.generate(to: URL(fileURLWithPath: output), images: images, size: size, seed: seed, objectSizes: objects)
    print(
      "wrote \(summary.trainImages) training and \(summary.validationImages) validation images with \(summary.objects) objects "
        + "to \(output) in \(String(format: "%.1f", Date().timeIntervalSince(start))) s")
  }
}
