import ArgumentParser
import COCO
import Foundation
import Torch
import Training

/// The flags of the commands that run a checkpoint on images (predict, serve): the input size (by
/// default the checkpoint's), the arithmetic and the device.
struct RunOptions: ParsableArguments {
  @Option(help: "Shorter side the images are resized to (default: the input the checkpoint was trained at, else 800).")
  var size: Int?

  @Option(name: .customLong("max-size"), help: "Longest side at most this after resizing (default: the checkpoint's, else 1333; scaled with --size).")
  var maxSize: Int?

  @Option(help: resizeHelp)
  var resize: DETRTransform.Resizing?

  @Option(help: "Arithmetic of the forward pass: fp32, or bf16 (bfloat16 autocast; fast on CPUs with bfloat16 instructions, very slow without).")
  var precision: Precision = .fp32

  @Option(help: deviceHelp)
  var device: Device?

  func validate() throws {
    if let problem = CheckpointInput.validate(size: size, maxSize: maxSize) { throw ValidationError(problem) }
  }

  /// The input for `loaded` (printing where it came from when the checkpoint chose it).
  func input(for loaded: LoadedDetector) -> DetectorInput {
    let (input, note) = CheckpointInput.resolve(size: size, maxSize: maxSize, resize: resize, for: loaded)
    if let note { print(note) }
    return input
  }
}

/// What the commands that run a checkpoint (predict, evaluate, serve) share: finding the checkpoint
/// (a training run's folder stands for its best/ or last/ checkpoint) and choosing the input size.
enum CheckpointInput {
  /// Loads the checkpoint `path` names, saying which one when a run folder was given.
  static func load(_ path: String) throws -> LoadedDetector {
    let (folder, note) = try DetectorCheckpoint.checkpointFolder(for: URL(fileURLWithPath: path))
    if let note { print(note) }
    return try DetectorCheckpoint.load(folder)
  }

  /// The input to resize images to: the flags given; else the checkpoint's recorded input (said once,
  /// as `note`); else COCO's 800/1333. A `--size` without `--max-size` keeps the default's ratio.
  static func resolve(size: Int?, maxSize: Int?, resize: DETRTransform.Resizing?, for loaded: LoadedDetector) -> (
    input: DetectorInput, note: String?
  ) {
    let input = loaded.resolvedInput(shorterSide: size, maxSize: maxSize, resizing: resize)
    let note = loaded.input != nil && size == nil && maxSize == nil ? "input: \(input) (recorded in the checkpoint; --size overrides)" : nil
    return (input, note)
  }

  /// The check of --size and --max-size that every such command makes.
  static func validate(size: Int?, maxSize: Int?) -> String? {
    if let size, !(16...8192).contains(size) { return "--size must be between 16 and 8192, got \(size)" }
    if let maxSize, !(16...16384).contains(maxSize) { return "--max-size must be between 16 and 16384, got \(maxSize)" }
    if let size, let maxSize, maxSize < size { return "--max-size (\(maxSize)) must be at least --size (\(size))" }
    return nil
  }
}
