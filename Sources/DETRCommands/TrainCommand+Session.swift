import Dispatch
import Foundation
import Training

/// What a person sees around a training run: the summary at the start, the line at the end, what Ctrl-C
/// leaves behind, and no folder left by a run that failed before it trained.
extension TrainCommand {
  /// "1 step", "2 steps".
  static func counted(_ count: Int, _ noun: String, plural: String? = nil) -> String {
    "\(count) \(count == 1 ? noun : plural ?? noun + "s")"
  }

  /// The summary printed before the first step.
  static func startSummary(
    model: String, parameters: Int, device: String, precision: String, train: (images: Int, boxes: Int), validation: (images: Int, boxes: Int)?,
    categories: Int, input: DetectorInput, batchSize: Int, epochs: Int, steps: Int, output: String
  ) -> String {
    var lines = [
      "training \(model) (\(String(format: "%.2f", Double(parameters) / 1e6)) M parameters) on \(device), \(precision)",
      "  train: \(counted(train.images, "image")), \(counted(train.boxes, "box", plural: "boxes")), \(counted(categories, "category", plural: "categories"))",
    ]
    if let validation {
      lines.append("  validation: \(counted(validation.images, "image")), \(counted(validation.boxes, "box", plural: "boxes")), evaluated after every epoch")
    } else {
      lines.append("  validation: none (--val-annotations evaluates after every epoch)")
    }
    lines.append("  input: \(input)")
    lines.append("  batch \(batchSize), \(counted(epochs, "epoch")), \(counted(steps, "step"))")
    lines.append("  output: \(output)")
    return lines.joined(separator: "\n")
  }

  /// The line printed when the run ends: steps, the best AP and where it is, the chart.
  static func endLine(steps: Int, output: String, bestAP: Double?, hasBest: Bool) -> String {
    var line = "done: \(counted(steps, "step")); last checkpoint \(output)/last"
    if hasBest, let bestAP { line += "; best AP \(String(format: "%.3f", bestAP)) in \(output)/best" }
    return line + "; chart \(output)/chart.png"
  }

  /// What Ctrl-C prints: the last checkpoint and the command that resumes, or that nothing was saved.
  static func interruptionMessage(output: String, arguments: [String]) -> String {
    let state = URL(fileURLWithPath: output).appendingPathComponent("last/trainer.json")
    guard let data = try? Data(contentsOf: state), let position = try? JSONDecoder().decode(TrainingPosition.self, from: data) else {
      return "stopped by Ctrl-C before the first checkpoint: nothing was saved"
    }
    let resume = (["detr"] + arguments + (arguments.contains("--resume") ? [] : ["--resume"])).map { $0.contains(" ") ? "'\($0)'" : $0 }
    return "stopped by Ctrl-C: the last checkpoint is \(output)/last (epoch \(position.epoch + 1), step \(position.step)); continue with:\n  "
      + resume.joined(separator: " ")
  }

  /// Runs `body` with Ctrl-C answered by `interruptionMessage` (exit status 130). Checkpoints are
  /// written into a temporary folder and moved in, so stopping at any moment leaves one whole.
  static func reportingInterruption(output: String, arguments: [String], _ body: () throws -> Void) rethrows {
    signal(SIGINT, SIG_IGN)
    let source = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
    source.setEventHandler {
      fflush(nil)
      FileHandle.standardError.write(Data(("\n" + interruptionMessage(output: output, arguments: arguments) + "\n").utf8))
      // At once, without exit handlers or static destructors: the training thread is still inside libtorch.
      _exit(130)
    }
    source.resume()
    defer {
      source.cancel()
      signal(SIGINT, SIG_DFL)
    }
    try body()
  }

  /// Removes a run folder that this run created and that holds nothing of a trained step (no checkpoint,
  /// no logged metrics), so a run that failed at its start leaves nothing behind.
  static func removeIfUntrained(_ folder: URL, existedBefore: Bool) {
    guard !existedBefore, !Trainer.hasCheckpoint(in: folder) else { return }
    let metrics = folder.appendingPathComponent("metrics.jsonl")
    if let size = (try? FileManager.default.attributesOfItem(atPath: metrics.path))?[.size] as? Int, size > 0 { return }
    try? FileManager.default.removeItem(at: folder)
  }
}
