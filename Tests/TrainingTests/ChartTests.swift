import COCO
import Foundation
import Testing

@testable import Training

@Suite struct ChartTests {
  static func records() -> [[String: Any]] {
    var records: [[String: Any]] = []
    for step in 1...100 {
      records.append([
        "step": step, "epoch": (step - 1) / 25, "lr": step > 80 ? 1e-5 : 1e-4, "loss": 10 * exp(-Double(step) / 30) + 1, "loss_ce": 1.0,
        "loss_bbox": 0.5, "loss_giou": 0.7, "loss_bbox_0": 0.9,
      ])
      if step % 25 == 0 {
        records.append(["step": step, "ap": Double(step) / 200, "ap50": Double(step) / 120])
        records.append(["step": step, "ema_ap": Double(step) / 180])
      }
    }
    return records
  }

  @Test func chartDrawsEveryFinalTermTheEvaluationsAndTheMarks() {
    let records = Self.records()
    #expect(TrainingChart.terms(in: records) == ["loss", "loss_bbox", "loss_ce", "loss_giou"], "auxiliary terms stay out")
    let image = TrainingChart.render(records)
    #expect(image.width == 1100 && image.height == 520)
    let colors = Set(image.pixels.indices.striding(by: 3).map { RGB(image.pixels[$0], image.pixels[$0 + 1], image.pixels[$0 + 2]) })
    for index in 0..<3 {
      let drawn = colors.contains(near: Image.color(forClass: index))
      #expect(drawn, "term \(index + 1) is drawn in its colour")
    }
    let (ap50, ema, drop) = (colors.contains(near: RGB(130, 130, 130)), colors.contains(near: RGB(40, 90, 200)), colors.contains(near: RGB(210, 40, 40)))
    #expect(ap50, "AP50 points are drawn")
    #expect(ema, "the EMA weights' AP is drawn")
    #expect(drop, "the learning-rate drop is marked")
  }

  @Test func smoothingAndTicksAreWhatTensorBoardAndPlotsUse() {
    let smoothed = TrainingChart.smoothed([1, 1, 1, 5])
    #expect(smoothed[0] == 1 && abs(smoothed[2] - 1) < 1e-12, "debiased: a constant stays itself")
    #expect(smoothed[3] > 1 && smoothed[3] < 5)
    #expect(TrainingChart.ticks(from: 0, to: 1000) == [0, 200, 400, 600, 800, 1000])
    #expect(TrainingChart.ticks(from: 0, to: 37) == [0, 10, 20, 30])
  }

  @Test func redrawWritesPNGAndSVG() throws {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("chart-\(UUID())")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: folder) }
    let metrics = folder.appendingPathComponent("metrics.jsonl")
    let lines = try Self.records().map { String(decoding: try JSONSerialization.data(withJSONObject: $0), as: UTF8.self) }
    try lines.joined(separator: "\n").write(to: metrics, atomically: true, encoding: .utf8)
    try TrainingChart.redraw(metrics: metrics, to: folder.appendingPathComponent("chart.png"))
    let png = try Image(contentsOf: folder.appendingPathComponent("chart.png"))
    #expect(png.width == 1100)
    let svg = try String(contentsOf: folder.appendingPathComponent("chart.svg"), encoding: .utf8)
    #expect(svg.hasPrefix("<?xml") && svg.contains("<svg") && svg.contains("width=\"1100\""))
  }
}

extension Set where Element == RGB {
  /// Whether a colour within `tolerance` per channel is present (anti-aliasing blends edges).
  func contains(near color: RGB, tolerance: Int = 6) -> Bool {
    contains {
      abs(Int($0.red) - Int(color.red)) <= tolerance && abs(Int($0.green) - Int(color.green)) <= tolerance
        && abs(Int($0.blue) - Int(color.blue)) <= tolerance
    }
  }
}

extension Range where Bound == Int {
  func striding(by step: Int) -> StrideTo<Int> { Swift.stride(from: lowerBound, to: upperBound, by: step) }
}
