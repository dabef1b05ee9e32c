import Dispatch
import Foundation

/// Bounding-box evaluation equal to pycocotools' `COCOeval` (iouType "bbox").
///
/// Follows pycocotools step for step, quirks included: ground-truth `area` (not the box) decides its
/// area range, crowd boxes are matched by the detection's area and may absorb many detections,
/// ties in score keep file order, and a match to a ground truth whose id is 0 counts as no match.
public struct COCOEvaluator: Sendable {
  public var parameters = EvaluationParameters()

  public init() {}

  /// Evaluates detections against ground truth. Every image and category of the ground truth
  /// counts, also those without boxes or detections.
  public func evaluate(groundTruth: GroundTruth, detections: [DetectedBox]) -> EvaluationResult {
    let imageIds = Array(Set(groundTruth.imageIds)).sorted()
    let categoryIds = Array(Set(groundTruth.categories.map(\.id))).sorted()
    let imageIndex = Dictionary(uniqueKeysWithValues: imageIds.enumerated().map { ($1, $0) })
    let categoryIndex = Dictionary(uniqueKeysWithValues: categoryIds.enumerated().map { ($1, $0) })

    // Boxes per (category, image), in file order.
    var truths = Array(repeating: [Int: [GroundTruthBox]](), count: categoryIds.count)
    for box in groundTruth.boxes {
      guard let k = categoryIndex[box.categoryId], let i = imageIndex[box.imageId] else { continue }
      truths[k][i, default: []].append(box)
    }
    var found = Array(repeating: [Int: [DetectedBox]](), count: categoryIds.count)
    for detection in detections {
      guard let k = categoryIndex[detection.categoryId], let i = imageIndex[detection.imageId] else { continue }
      found[k][i, default: []].append(detection)
    }

    let parameters = self.parameters
    let maxDetections = parameters.maxDetections.max() ?? 100
    let areas = parameters.areaRanges
    let (truthsByCategory, detectionsByCategory) = (truths, found)
    // Categories are independent: evaluate them on all cores.
    let results = ConcurrentResults<[[ImageEvaluation?]]>(count: categoryIds.count)
    DispatchQueue.concurrentPerform(iterations: categoryIds.count) { k in
      var perArea = Array(repeating: Array<ImageEvaluation?>(repeating: nil, count: imageIds.count), count: areas.count)
      for i in Set(truthsByCategory[k].keys).union(detectionsByCategory[k].keys) {
        let cell = ImageCategoryCell(
          groundTruths: truthsByCategory[k][i] ?? [], detections: detectionsByCategory[k][i] ?? [], maxDetections: maxDetections)
        for (a, area) in areas.enumerated() {
          perArea[a][i] = cell.evaluate(area: (area.low, area.high), maxDetections: maxDetections, iouThresholds: parameters.iouThresholds)
        }
      }
      results.set(k, perArea)
    }
    let accumulation = Accumulation(evaluations: results.values, parameters: parameters)
    let names = Dictionary(groundTruth.categories.map { ($0.id, $0.name) }, uniquingKeysWith: { first, _ in first })
    return EvaluationResult(
      parameters: parameters, categoryIds: categoryIds, categoryNames: categoryIds.map { names[$0] ?? String($0) },
      precision: accumulation.precision,
      recall: accumulation.recall)
  }
}

/// Slots written once each from concurrent iterations.
private final class ConcurrentResults<Value>: @unchecked Sendable {
  private var slots: [Value?]
  private let lock = NSLock()
  init(count: Int) { slots = Array(repeating: nil, count: count) }
  func set(_ index: Int, _ value: Value) {
    lock.lock()
    slots[index] = value
    lock.unlock()
  }
  var values: [Value] { slots.map { $0! } }
}
