import COCO
import Foundation

/// The chart of a run, `chart.png` and `chart.svg`: on the left the final loss terms over steps (log
/// scale; smoothed as TensorBoard smooths, the raw values faint behind), on the right AP and AP50
/// after each evaluation (and the EMA weights' AP when kept); epochs marked by faint vertical lines,
/// learning-rate drops by dashed red ones; axes with ticks, a legend per panel.
enum TrainingChart {
  static let (width, height) = (1100.0, 520.0)
  static let lossPanel = (left: 80.0, right: 560.0, top: 60.0, bottom: 450.0)
  static let apPanel = (left: 660.0, right: 1060.0, top: 60.0, bottom: 450.0)

  /// Reads `metrics.jsonl` and writes `file` (PNG) and an SVG beside it.
  static func redraw(metrics: URL, to file: URL) throws {
    let records = (try String(contentsOf: metrics, encoding: .utf8)).split(separator: "\n").compactMap {
      (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any]
    }
    try render(records).write(to: file)
    let svg = Canvas(width: Int(width), height: Int(height), svg: file.deletingPathExtension().appendingPathExtension("svg"))
    draw(records, on: svg)
    svg.finish()
  }

  static func render(_ records: [[String: Any]]) -> Image {
    let canvas = Canvas(width: Int(width), height: Int(height))
    draw(records, on: canvas)
    return canvas.image
  }

  /// The loss terms shown: the total and the final prediction's terms found in the records.
  static func terms(in records: [[String: Any]]) -> [String] {
    let found = Set(records.flatMap { $0.keys.filter(Trainer.isFinalTerm) })
    return ["loss"] + found.sorted()
  }

  /// TensorBoard's smoothing: an exponential moving average with weight 0.9, debiased at the start.
  static func smoothed(_ values: [Double], weight: Double = 0.9) -> [Double] {
    var (average, debias) = (0.0, 0.0)
    return values.map { value in
      average = weight * average + (1 - weight) * value
      debias = weight * debias + (1 - weight)
      return average / debias
    }
  }

  /// Round tick values covering [low, high]: steps of 1, 2 or 5 times a power of ten.
  static func ticks(from low: Double, to high: Double, count: Int = 5) -> [Double] {
    guard high > low else { return [low] }
    let raw = (high - low) / Double(count)
    let power = Foundation.pow(10, Foundation.floor(Foundation.log10(raw)))
    let step = [1.0, 2, 5, 10].map { $0 * power }.first { $0 >= raw } ?? 10 * power
    return stride(from: Foundation.ceil(low / step) * step, through: high + step * 1e-9, by: step).map { $0 }
  }

  static func label(_ value: Double) -> String {
    if value == 0 { return "0" }
    if abs(value) >= 1000 { return String(format: "%.0fk", value / 1000) }
    return String(format: "%g", (value * 1000).rounded() / 1000)
  }

  static func draw(_ records: [[String: Any]], on canvas: Canvas) {
    let training = records.filter { $0["loss"] != nil }
    let evaluations = records.filter { $0["ap"] != nil || $0["ema_ap"] != nil }
    let maxStep = Double(records.compactMap { $0["step"] as? Int }.max() ?? 1)
    let terms = terms(in: training)

    // Epoch boundaries and learning-rate drops, from the training records.
    var epochStarts: [Int] = []
    var drops: [Int] = []
    for (previous, record) in zip(training, training.dropFirst()) {
      if let a = previous["epoch"] as? Int, let b = record["epoch"] as? Int, b != a, let step = record["step"] as? Int { epochStarts.append(step) }
      if let a = previous["lr"] as? Double, let b = record["lr"] as? Double, b < a * 0.99, let step = record["step"] as? Int { drops.append(step) }
    }

    // Left: losses, log scale.
    let values = training.flatMap { record in terms.compactMap { record[$0] as? Double } }.filter { $0 > 0 && $0.isFinite }
    let low = Foundation.floor(Foundation.log10(values.min() ?? 0.1) * 2) / 2
    let high = Swift.max(low + 0.5, Foundation.ceil(Foundation.log10(values.max() ?? 10) * 2) / 2)
    let loss = lossPanel
    func x(_ step: Double, _ panel: (left: Double, right: Double, top: Double, bottom: Double)) -> Double {
      panel.left + step / Swift.max(maxStep, 1) * (panel.right - panel.left)
    }
    func yLoss(_ value: Double) -> Double {
      loss.bottom - (Foundation.log10(Swift.max(value, 1e-12)) - low) / (high - low) * (loss.bottom - loss.top)
    }
    func yAP(_ value: Double) -> Double { apPanel.bottom - Swift.max(0, Swift.min(1, value)) * (apPanel.bottom - apPanel.top) }

    for panel in [loss, apPanel] {
      canvas.setColor(RGB(200, 200, 200))
      canvas.setLine(width: 1)
      for step in epochStarts { canvas.strokeLine([(x(Double(step), panel), panel.top), (x(Double(step), panel), panel.bottom)]) }
      canvas.setColor(RGB(210, 40, 40))
      canvas.setLine(width: 2, dash: [6, 4])
      for step in drops { canvas.strokeLine([(x(Double(step), panel), panel.top), (x(Double(step), panel), panel.bottom)]) }
      canvas.setLine(width: 1)
    }

    // Loss curves: raw faint, smoothed solid.
    for (index, term) in terms.enumerated() {
      let points = training.compactMap { record -> (Double, Double)? in
        guard let step = record["step"] as? Int, let value = record[term] as? Double, value > 0, value.isFinite else { return nil }
        return (Double(step), value)
      }
      let color = index == 0 ? RGB(30, 30, 30) : Image.color(forClass: index - 1)
      canvas.setColor(color, alpha: 0.25)
      canvas.setLine(width: 1)
      canvas.strokeLine(points.map { (x($0.0, loss), yLoss($0.1)) })
      canvas.setColor(color)
      canvas.setLine(width: 2)
      canvas.strokeLine(zip(points, smoothed(points.map(\.1))).map { (x($0.0.0, loss), yLoss($0.1)) })
    }

    // AP curves.
    let apSeries: [(key: String, name: String, color: RGB, dash: [Double])] = [
      ("ap", "AP", RGB(20, 20, 20), []), ("ap50", "AP50", RGB(130, 130, 130), []), ("ema_ap", "AP (EMA)", RGB(40, 90, 200), [5, 3]),
    ]
    let shownAP = apSeries.filter { series in evaluations.contains { $0[series.key] != nil } }
    for series in shownAP {
      let points = evaluations.compactMap { record -> (Double, Double)? in
        guard let step = record["step"] as? Int, let value = record[series.key] as? Double else { return nil }
        return (x(Double(step), apPanel), yAP(value))
      }
      canvas.setColor(series.color)
      canvas.setLine(width: 2, dash: series.dash)
      canvas.strokeLine(points)
      for point in points { canvas.fillCircle(x: point.0, y: point.1, radius: 3.5) }
    }
    canvas.setLine(width: 1)

    // Axes, ticks, titles.
    canvas.setFont(size: 12)
    for panel in [loss, apPanel] {
      canvas.setColor(RGB(40, 40, 40))
      canvas.strokeRectangle(x: panel.left, y: panel.top, width: panel.right - panel.left, height: panel.bottom - panel.top)
      for step in ticks(from: 0, to: maxStep) {
        let position = x(step, panel)
        canvas.strokeLine([(position, panel.bottom), (position, panel.bottom + 5)])
        let text = label(step)
        canvas.text(text, x: position - canvas.measure(text).width / 2, y: panel.bottom + 19)
      }
      canvas.text("step", x: (panel.left + panel.right) / 2 - 12, y: panel.bottom + 38)
    }
    var exponent = low
    while exponent <= high + 1e-9 {
      for factor in [1.0, 2, 5] {
        let value = Foundation.pow(10, exponent) * factor
        guard Foundation.log10(value) <= high + 1e-9, Foundation.log10(value) >= low - 1e-9 else { continue }
        let position = yLoss(value)
        canvas.strokeLine([(loss.left - 5, position), (loss.left, position)])
        let text = label(value)
        canvas.text(text, x: loss.left - 9 - canvas.measure(text).width, y: position + 4)
      }
      exponent = Foundation.floor(exponent) + 1
    }
    for value in stride(from: 0.0, through: 1.0, by: 0.2) {
      let position = yAP(value)
      canvas.strokeLine([(apPanel.left - 5, position), (apPanel.left, position)])
      let text = String(format: "%.1f", value)
      canvas.text(text, x: apPanel.left - 9 - canvas.measure(text).width, y: position + 4)
    }
    canvas.text("loss (log scale)", x: 22, y: (loss.top + loss.bottom) / 2 + 45, rotated: true)
    canvas.setFont(size: 15, bold: true)
    canvas.text("Training losses", x: loss.left, y: 32)
    canvas.text("Validation AP", x: apPanel.left, y: 32)

    // Legends, and the marks' meaning.
    canvas.setFont(size: 12)
    func legend(_ entries: [(String, RGB, [Double])], right: Double, top: Double) {
      let width = (entries.map { canvas.measure($0.0).width }.max() ?? 0) + 40
      canvas.setColor(RGB(255, 255, 255), alpha: 0.85)
      canvas.fillRectangle(x: right - width - 8, y: top + 6, width: width, height: Double(entries.count) * 18 + 8)
      for (index, entry) in entries.enumerated() {
        let y = top + 20 + Double(index) * 18
        canvas.setColor(entry.1)
        canvas.setLine(width: 2, dash: entry.2)
        canvas.strokeLine([(right - width, y - 4), (right - width + 22, y - 4)])
        canvas.setLine(width: 1)
        canvas.setColor(RGB(30, 30, 30))
        canvas.text(entry.0, x: right - width + 28, y: y)
      }
    }
    let lossEntries = terms.enumerated().map { ($0.element, $0.offset == 0 ? RGB(30, 30, 30) : Image.color(forClass: $0.offset - 1), [Double]()) }
    legend(lossEntries, right: loss.right, top: loss.top)
    legend(shownAP.map { ($0.name, $0.color, $0.dash) }, right: apPanel.right, top: apPanel.top)
    canvas.setColor(RGB(90, 90, 90))
    canvas.text("grey lines: epochs   dashed red: learning-rate drop   losses smoothed (raw values faint)", x: loss.left, y: height - 12)
  }
}
