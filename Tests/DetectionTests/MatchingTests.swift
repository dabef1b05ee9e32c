import Foundation
import Testing
import Torch
import TorchTestSupport

@testable import Detection

/// Linear assignment against scipy, box ops and matchers against transformers
/// (goldens from Scripts/goldens/make_detection_goldens.py).
@Suite struct MatchingTests {
  let golden = try! Goldens(Bundle.module.url(forResource: "Goldens/detection", withExtension: "safetensors")!)

  var lsapCases: [String] { golden.contents.metadata["lsap_cases"]!.split(separator: ",").map(String.init) }

  @Test func assignmentEqualsScipyOnEveryKindOfMatrix() throws {
    #expect(lsapCases.count >= 15)
    for name in lsapCases {
      let cost = golden["lsap.\(name).cost"]
      let (rows, columns) = (cost.size(0), cost.size(1))
      let values = cost.asArray(Double.self)
      let pairs = try LinearAssignment.solve(cost: values, rows: rows, columns: columns)
      #expect(pairs.count == min(rows, columns), "\(name): one pair per row or column")
      #expect(Set(pairs.map(\.row)).count == pairs.count && Set(pairs.map(\.column)).count == pairs.count, "\(name): one-to-one")
      let total = pairs.reduce(0.0) { $0 + values[$1.row * columns + $1.column] }
      let expected = golden["lsap.\(name).total"].item(Double.self)
      #expect(abs(total - expected) <= 1e-9 * max(1, abs(expected)), "\(name): total \(total) vs scipy \(expected)")
      #expect(pairs.map(\.row) == golden["lsap.\(name).rows"].asArray(Int.self), "\(name): rows as scipy")
      #expect(pairs.map(\.column) == golden["lsap.\(name).columns"].asArray(Int.self), "\(name): columns as scipy")
    }
  }

  @Test func invalidMatricesThrow() throws {
    #expect(throws: LinearAssignment.Failure.invalidEntries) { try LinearAssignment.solve(cost: [1, .nan, 2, 3], rows: 2, columns: 2) }
    #expect(throws: LinearAssignment.Failure.invalidEntries) { try LinearAssignment.solve(cost: [1, -.infinity], rows: 1, columns: 2) }
    #expect(throws: LinearAssignment.Failure.infeasible) {
      try LinearAssignment.solve(cost: [.infinity, .infinity, 1, 2], rows: 2, columns: 2)
    }
    #expect(try LinearAssignment.solve(cost: [], rows: 0, columns: 4).isEmpty)
  }

  @Test func boxOpsEqualTransformers() {
    let a = golden["boxes.a"]
    let b = golden["boxes.b"]
    let (iou, union) = Boxes.pairwiseIoU(a, b)
    expectClose(iou, golden["boxes.iou"], "IoU")
    expectClose(union, golden["boxes.union"], "union")
    expectClose(Boxes.pairwiseGeneralizedIoU(a, b), golden["boxes.giou"], "GIoU")
    expectClose(Boxes.centerToCorners(Boxes.cornersToCenter(a)), a, "center round trip")
    expectClose(Boxes.cornersToCOCO(Boxes.cocoToCorners(a)), a, "COCO round trip")
    let square = Tensor([0, 0, 2, 3] as [Float], shape: [1, 4])
    #expect(Boxes.area(square).item(Float.self) == 6)
  }

  @Test func nonMaximumSuppressionKeepsTheBestOfOverlappingBoxes() {
    let boxes = Tensor([0, 0, 10, 10, 1, 1, 11, 11, 20, 20, 30, 30, 0, 0, 10, 10] as [Float], shape: [4, 4])
    let scores = Tensor([0.9, 0.95, 0.5, 0.3] as [Float])
    #expect(Boxes.nonMaximumSuppression(boxes, scores: scores, iouThreshold: 0.5).asArray(Int.self) == [1, 2])
    #expect(Boxes.nonMaximumSuppression(boxes, scores: scores, iouThreshold: 0.99).asArray(Int.self) == [1, 0, 2])
    let classes = Tensor([0, 1, 0, 0] as [Int])
    #expect(
      Boxes.batchedNonMaximumSuppression(boxes, scores: scores, classes: classes, iouThreshold: 0.5).asArray(Int.self) == [1, 0, 2],
      "boxes of other classes do not suppress each other")
  }

  private func targets(_ name: String, count: Int) -> [MatchTarget] {
    (0..<count).map { MatchTarget(labels: golden["\(name).target\($0).labels"], boxes: golden["\(name).target\($0).boxes"]) }
  }

  @Test(arguments: [
    ("detr_matcher", HungarianMatcher(classWeight: 1, boxWeight: 5, giouWeight: 2, classificationCost: .softmax), 3),
    (
      "deformable_matcher",
      HungarianMatcher(classWeight: 2, boxWeight: 5, giouWeight: 2, classificationCost: .focal(alpha: 0.25, gamma: 2)), 2
    ),
  ])
  func matcherEqualsTransformers(name: String, matcher: HungarianMatcher, images: Int) throws {
    let targets = targets(name, count: images)
    let matches = try matcher.match(logits: golden["\(name).logits"], boxes: golden["\(name).boxes"], targets: targets)
    for (index, match) in matches.enumerated() {
      #expect(match.queries == golden["\(name).target\(index).queries"].asArray(Int.self), "\(name) image \(index): queries")
      #expect(match.targets == golden["\(name).target\(index).indices"].asArray(Int.self), "\(name) image \(index): targets")
    }
  }

  @Test func matchingABatchEqualsMatchingEachImageAlone() throws {
    let name = "deformable_matcher"
    let matcher = HungarianMatcher(classWeight: 2, boxWeight: 5, giouWeight: 2, classificationCost: .focal(alpha: 0.25, gamma: 2))
    let logits = golden["\(name).logits"]
    let boxes = golden["\(name).boxes"]
    let all = targets(name, count: 2)
    let together = try matcher.match(logits: logits, boxes: boxes, targets: all)
    for index in 0..<2 {
      let alone = try matcher.match(logits: logits[index..<(index + 1)], boxes: boxes[index..<(index + 1)], targets: [all[index]])
      #expect(alone[0].queries == together[index].queries && alone[0].targets == together[index].targets)
    }
  }
}
