import COCO
import Foundation
import Testing

@testable import Training

@Suite struct ChartTests {
  @Test func chartDrawsEveryTermAndTheEvaluations() {
    var records: [[String: Any]] = []
    for step in 1...100 {
      records.append(["step": step, "loss": 10 * exp(-Double(step) / 30) + 1, "loss_ce": 1.0, "loss_bbox": 0.5, "loss_giou": 0.7])
      if step % 25 == 0 { records.append(["step": step, "ap": Double(step) / 200, "ap50": Double(step) / 120]) }
    }
    let image = TrainingChart.render(records)
    #expect(image.width == 900 && image.height == 500)
    let colors = Set(image.pixels.indices.striding(by: 3).map { RGB(image.pixels[$0], image.pixels[$0 + 1], image.pixels[$0 + 2]) })
    for index in 0..<TrainingChart.terms.count {
      #expect(colors.contains(Image.color(forClass: index)), "term \(TrainingChart.terms[index]) is drawn")
    }
    #expect(colors.contains(RGB(120, 120, 120)), "AP50 points are drawn")
  }
}

extension Range where Bound == Int {
  func striding(by step: Int) -> StrideTo<Int> { Swift.stride(from: lowerBound, to: upperBound, by: step) }
}
