import Foundation

/// `metrics.jsonl` (one JSON object per line) and `metrics.csv` in the run folder.
struct MetricsLog {
  let jsonl: URL
  let csv: URL

  init(folder: URL) throws {
    jsonl = folder.appendingPathComponent("metrics.jsonl")
    csv = folder.appendingPathComponent("metrics.csv")
    for file in [jsonl, csv] where !FileManager.default.fileExists(atPath: file.path) {
      _ = FileManager.default.createFile(atPath: file.path, contents: nil)
    }
  }

  func append(step: Int, epoch: Int, losses: StepLosses, learningRate: Double, imagesPerSecond: Double) throws {
    var record: [String: Any] = [
      "step": step, "epoch": epoch, "loss": losses.total, "lr": learningRate, "images_per_second": imagesPerSecond,
    ]
    for (name, value) in losses.terms { record[name] = value }
    try write(record)
    try appendLine("\(step),\(epoch),train,loss,\(losses.total)", to: csv)
  }

  func appendEvaluation(step: Int, epoch: Int, stats: [Double]) throws {
    try write(["step": step, "epoch": epoch, "ap": stats[0], "ap50": stats[1], "ap75": stats[2], "stats": stats])
    try appendLine("\(step),\(epoch),val,ap,\(stats[0])\n\(step),\(epoch),val,ap50,\(stats[1])", to: csv)
  }

  /// Drops lines past `step`, so that a resumed run continues the files exactly.
  func truncate(afterStep step: Int) throws {
    for file in [jsonl, csv] {
      let lines = (try String(contentsOf: file, encoding: .utf8)).split(separator: "\n")
      let kept = lines.filter { line in
        let recordStep =
          file == jsonl
          ? ((try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any])?["step"] as? Int
          : Int(line.split(separator: ",").first ?? "")
        return (recordStep ?? 0) <= step
      }
      try (kept.joined(separator: "\n") + (kept.isEmpty ? "" : "\n")).write(to: file, atomically: true, encoding: .utf8)
    }
  }

  private func write(_ record: [String: Any]) throws {
    let data = try JSONSerialization.data(withJSONObject: record, options: [.sortedKeys])
    try appendLine(String(decoding: data, as: UTF8.self), to: jsonl)
  }

  private func appendLine(_ line: String, to file: URL) throws {
    let handle = try FileHandle(forWritingTo: file)
    defer { try? handle.close() }
    try handle.seekToEnd()
    try handle.write(contentsOf: Data((line + "\n").utf8))
  }
}
