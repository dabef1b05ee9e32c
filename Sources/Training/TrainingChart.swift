import COCO
import Foundation

/// A PNG chart of a run: the loss terms over steps (left, log scale) and AP / AP50 after each evaluation (right, 0–1).
enum TrainingChart {
  static let terms = ["loss", "loss_ce", "loss_bbox", "loss_giou"]

  /// Reads `metrics.jsonl` and writes `chart.png` beside it.
  static func redraw(metrics: URL, to file: URL) throws {
    let records = (try String(contentsOf: metrics, encoding: .utf8)).split(separator: "\n").compactMap {
      (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any]
    }
    try render(records).write(to: file)
  }

  static func render(_ records: [[String: Any]]) -> Image {
    let (width, height) = (900, 500)
    let (left, right, top, bottom) = (70, 830, 40, 440)
    var image = Image(width: width, height: height, color: RGB(255, 255, 255))
    image.drawLine(from: (Double(left), Double(top)), to: (Double(left), Double(bottom)), color: RGB(0, 0, 0), width: 1)
    image.drawLine(from: (Double(left), Double(bottom)), to: (Double(right), Double(bottom)), color: RGB(0, 0, 0), width: 1)
    image.drawLine(from: (Double(right), Double(top)), to: (Double(right), Double(bottom)), color: RGB(0, 0, 0), width: 1)
    let training = records.filter { $0["loss"] != nil }
    let evaluations = records.filter { $0["ap"] != nil }
    let maxStep = Double((records.compactMap { $0["step"] as? Int }.max() ?? 1))
    func x(_ step: Int) -> Double { Double(left) + Double(step) / Swift.max(maxStep, 1) * Double(right - left) }
    let values = training.flatMap { record in terms.compactMap { record[$0] as? Double } }.filter { $0 > 0 && $0.isFinite }
    let (low, high) = (Foundation.log10(values.min() ?? 0.1), Foundation.log10(values.max() ?? 10))
    func y(loss: Double) -> Double {
      let span = Swift.max(high - low, 1e-6)
      return Double(bottom) - (Foundation.log10(Swift.max(loss, 1e-12)) - low) / span * Double(bottom - top)
    }
    for (index, term) in terms.enumerated() {
      let color = Image.color(forClass: index)
      let points = training.compactMap { record -> (Double, Double)? in
        guard let step = record["step"] as? Int, let value = record[term] as? Double, value > 0, value.isFinite else { return nil }
        return (x(step), y(loss: value))
      }
      for (a, b) in zip(points, points.dropFirst()) { image.drawLine(from: a, to: b, color: color) }
      image.write(term, x: left + 10 + index * 130, y: 12, color: color)
    }
    for (index, key) in ["ap", "ap50"].enumerated() {
      let color = index == 0 ? RGB(0, 0, 0) : RGB(120, 120, 120)
      let points = evaluations.compactMap { record -> (Double, Double)? in
        guard let step = record["step"] as? Int, let value = record[key] as? Double else { return nil }
        return (x(step), Double(bottom) - Swift.max(0, value) * Double(bottom - top))
      }
      for (a, b) in zip(points, points.dropFirst()) { image.drawLine(from: a, to: b, color: color, width: 3) }
      for point in points { image.fillRectangle(Int(point.0) - 4, Int(point.1) - 4, Int(point.0) + 4, Int(point.1) + 4, color: color) }
      image.write(key, x: left + 540 + index * 80, y: 12, color: color)
    }
    image.write(String(format: "%.3g", Foundation.pow(10, high)), x: 4, y: top, scale: 1)
    image.write(String(format: "%.3g", Foundation.pow(10, low)), x: 4, y: bottom - 8, scale: 1)
    image.write("1.0", x: right + 6, y: top, scale: 1)
    image.write("0", x: right + 6, y: bottom - 8, scale: 1)
    image.write("step \(Int(maxStep))", x: right - 70, y: bottom + 12, scale: 1)
    image.write("loss (log)", x: 4, y: (top + bottom) / 2, scale: 1)
    image.write("ap", x: right + 6, y: (top + bottom) / 2, scale: 1)
    return image
  }
}
