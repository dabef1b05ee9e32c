import Foundation

/// `metrics.jsonl` (one JSON object per line) and `metrics.csv` in the run folder.
struct MetricsLog {
  let jsonl: URL
  let csv: URL

  /// metrics.csv is long: one row per (step, value), so every loss term fits without changing columns.
  static let csvHeader = "step,epoch,split,metric,value"

  init(folder: URL) throws {
    jsonl = folder.appendingPathComponent("metrics.jsonl")
    csv = folder.appendingPathComponent("metrics.csv")
    if !FileManager.default.fileExists(atPath: jsonl.path) {
      _ = FileManager.default.createFile(atPath: jsonl.path, contents: nil)
    }
    if !FileManager.default.fileExists(atPath: csv.path) {
      _ = FileManager.default.createFile(atPath: csv.path, contents: Data((Self.csvHeader + "\n").utf8))
    }
  }

  func append(step: Int, epoch: Int, losses: StepLosses, learningRate: Double, imagesPerSecond: Double) throws {
    var record: [String: Any] = [
      "step": step, "epoch": epoch, "loss": losses.total, "lr": learningRate, "images_per_second": imagesPerSecond,
    ]
    for (name, value) in losses.terms { record[name] = value }
    try write(record)
    let rows = [("loss", losses.total)] + losses.terms.map { ($0.name, $0.value) } + [("lr", learningRate), ("images_per_second", imagesPerSecond)]
    try appendLine(rows.map { "\(step),\(epoch),train,\($0.0),\($0.1)" }.joined(separator: "\n"), to: csv)
  }

  /// One evaluation's COCO statistics; `weights` "ema" marks the averaged weights' (keys prefixed `ema_`
  /// in metrics.jsonl, split `val_ema` in metrics.csv).
  func appendEvaluation(step: Int, epoch: Int, stats: [Double], weights: String? = nil) throws {
    let prefix = weights.map { "\($0)_" } ?? ""
    try write([
      "step": step, "epoch": epoch, prefix + "ap": stats[0], prefix + "ap50": stats[1], prefix + "ap75": stats[2], prefix + "stats": stats,
    ])
    let names = ["ap", "ap50", "ap75", "ap_small", "ap_medium", "ap_large", "ar1", "ar10", "ar100", "ar_small", "ar_medium", "ar_large"]
    let split = weights.map { "val_\($0)" } ?? "val"
    try appendLine(zip(names, stats).map { "\(step),\(epoch),\(split),\($0.0),\($0.1)" }.joined(separator: "\n"), to: csv)
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
