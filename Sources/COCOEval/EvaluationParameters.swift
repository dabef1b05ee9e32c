/// COCOeval's bbox parameters, computed with the same floating-point steps as pycocotools (numpy's
/// `linspace`), so thresholds compare bit for bit.
public struct EvaluationParameters: Sendable {
  /// 0.50, 0.55, ..., 0.95.
  public var iouThresholds: [Double]
  /// 0.00, 0.01, ..., 1.00.
  public var recallThresholds: [Double]
  /// Detections per image considered, ascending: 1, 10, 100.
  public var maxDetections: [Int]
  /// all, small (< 32²), medium (32²–96²), large (> 96²), by area in pixels.
  public var areaRanges: [(label: String, low: Double, high: Double)]

  public init() {
    iouThresholds = Self.linspace(0.5, 0.95, count: 10)
    recallThresholds = Self.linspace(0, 1, count: 101)
    maxDetections = [1, 10, 100]
    areaRanges = [("all", 0, 1e10), ("small", 0, 1024), ("medium", 1024, 9216), ("large", 9216, 1e10)]
  }

  /// numpy's `linspace(start, stop, count)` with the endpoint: `i * step + start`, last = stop.
  static func linspace(_ start: Double, _ stop: Double, count: Int) -> [Double] {
    let step = (stop - start) / Double(count - 1)
    var values = (0..<count).map { Double($0) * step + start }
    values[count - 1] = stop
    return values
  }
}
