import Foundation

/// Precision and recall of an evaluation, and pycocotools' summary of them.
public struct EvaluationResult: Sendable {
  public let parameters: EvaluationParameters
  public let categoryIds: [Int]
  public let categoryNames: [String]
  /// `[iou threshold][recall threshold][category][area range][max detections]`, -1 where undefined.
  public let precision: [[[[[Double]]]]]
  /// `[iou threshold][category][area range][max detections]`, -1 where undefined.
  public let recall: [[[[Double]]]]

  /// One line of the summary: AP or AR at an IoU threshold (nil: all), an area range and a detection limit.
  public struct SummaryLine: Sendable {
    public var isPrecision: Bool
    public var iouThreshold: Double?
    public var area: String
    public var maxDetections: Int
  }

  /// The 12 lines of `COCOeval.summarize()` for bounding boxes, in its order.
  public static let summaryLines: [SummaryLine] = [
    .init(isPrecision: true, iouThreshold: nil, area: "all", maxDetections: 100),
    .init(isPrecision: true, iouThreshold: 0.5, area: "all", maxDetections: 100),
    .init(isPrecision: true, iouThreshold: 0.75, area: "all", maxDetections: 100),
    .init(isPrecision: true, iouThreshold: nil, area: "small", maxDetections: 100),
    .init(isPrecision: true, iouThreshold: nil, area: "medium", maxDetections: 100),
    .init(isPrecision: true, iouThreshold: nil, area: "large", maxDetections: 100),
    .init(isPrecision: false, iouThreshold: nil, area: "all", maxDetections: 1),
    .init(isPrecision: false, iouThreshold: nil, area: "all", maxDetections: 10),
    .init(isPrecision: false, iouThreshold: nil, area: "all", maxDetections: 100),
    .init(isPrecision: false, iouThreshold: nil, area: "small", maxDetections: 100),
    .init(isPrecision: false, iouThreshold: nil, area: "medium", maxDetections: 100),
    .init(isPrecision: false, iouThreshold: nil, area: "large", maxDetections: 100),
  ]

  /// The 12 numbers of `COCOeval.stats`: AP, AP50, AP75, AP small/medium/large, AR@1, AR@10, AR@100, AR small/medium/large.
  public var stats: [Double] { Self.summaryLines.map { value(of: $0) } }

  /// AP (IoU 0.50:0.95, all areas, 100 detections) of each category, by category id; -1 for a category without ground truth.
  public var averagePrecisionPerCategory: [Int: Double] {
    let a = parameters.areaRanges.firstIndex { $0.label == "all" }!
    let m = parameters.maxDetections.firstIndex(of: 100) ?? parameters.maxDetections.count - 1
    var result: [Int: Double] = [:]
    for (k, id) in categoryIds.enumerated() {
      var values: [Double] = []
      for t in precision.indices { for r in precision[t].indices { values.append(precision[t][r][k][a][m]) } }
      result[id] = Self.meanOfDefined(values)
    }
    return result
  }

  /// The value of one summary line: the mean over the defined (> -1) entries, or -1 if none.
  public func value(of line: SummaryLine) -> Double {
    guard let a = parameters.areaRanges.firstIndex(where: { $0.label == line.area }),
      let m = parameters.maxDetections.firstIndex(of: line.maxDetections)
    else { return -1 }
    let thresholds = parameters.iouThresholds.indices.filter {
      line.iouThreshold == nil || parameters.iouThresholds[$0] == line.iouThreshold
    }
    var values: [Double] = []
    for t in thresholds {
      for k in categoryIds.indices {
        if line.isPrecision {
          for r in precision[t].indices { values.append(precision[t][r][k][a][m]) }
        } else {
          values.append(recall[t][k][a][m])
        }
      }
    }
    return Self.meanOfDefined(values)
  }

  /// The summary as pycocotools prints it.
  public var summaryText: String {
    zip(Self.summaryLines, stats).map { line, value in
      let title = line.isPrecision ? "Average Precision" : "Average Recall"
      let kind = line.isPrecision ? "(AP)" : "(AR)"
      let iou =
        line.iouThreshold.map { String(format: "%0.2f", $0) }
        ?? String(format: "%0.2f:%0.2f", parameters.iouThresholds.first!, parameters.iouThresholds.last!)
      return
        " \(title.padding(toLength: 18, withPad: " ", startingAt: 0)) \(kind) @[ IoU=\(iou.padding(toLength: 9, withPad: " ", startingAt: 0)) | area=\(String(repeating: " ", count: max(0, 6 - line.area.count)) + line.area) | maxDets=\(String(format: "%3d", line.maxDetections)) ] = \(String(format: "%0.3f", value))"
    }.joined(separator: "\n")
  }

  /// A table of AP per category (id, name, AP), highest first.
  public var perCategoryTable: String {
    let perCategory = averagePrecisionPerCategory
    let width = max(8, categoryNames.map(\.count).max() ?? 0)
    var lines = ["category id  \("name".padding(toLength: width, withPad: " ", startingAt: 0))  AP"]
    for (id, name) in zip(categoryIds, categoryNames).sorted(by: { (perCategory[$0.0] ?? -1) > (perCategory[$1.0] ?? -1) }) {
      let ap = perCategory[id] ?? -1
      let text = ap < 0 ? "  n/a" : String(format: "%.3f", ap)
      lines.append("\(String(format: "%11d", id))  \(name.padding(toLength: width, withPad: " ", startingAt: 0))  \(text)")
    }
    return lines.joined(separator: "\n")
  }

  static func meanOfDefined(_ values: [Double]) -> Double {
    let defined = values.filter { $0 > -1 }
    return defined.isEmpty ? -1 : defined.reduce(0, +) / Double(defined.count)
  }
}
