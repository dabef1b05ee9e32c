import Foundation

/// What `GET /metrics` reports, in Prometheus's text format: requests by route and status, errors by
/// kind, request and inference latencies, batch sizes and the queue's depth. Thread-safe.
public final class ServerMetrics: @unchecked Sendable {
  private let lock = NSLock()
  private var requests: [Pair: Int] = [:]
  private var errors: [String: Int] = [:]
  private var requestSeconds = Histogram(bounds: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30])
  private var inferenceSeconds = Histogram(bounds: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30])
  private var batchSizes = Histogram(bounds: [1, 2, 4, 8, 16, 32, 64])
  private var queueDepth = 0
  private var largest = 0

  public init() {}

  private struct Pair: Hashable { var route: String, status: Int }

  /// Counts of one value falling at or under each bound, with their sum (Prometheus's histogram).
  struct Histogram {
    var bounds: [Double]
    var counts: [Int]
    var sum = 0.0
    var total = 0
    init(bounds: [Double]) { (self.bounds, self.counts) = (bounds, Array(repeating: 0, count: bounds.count)) }
    mutating func observe(_ value: Double) {
      for (index, bound) in bounds.enumerated() where value <= bound { counts[index] += 1 }
      sum += value
      total += 1
    }
    func lines(_ name: String) -> [String] {
      zip(bounds, counts).map { "\(name)_bucket{le=\"\(Self.format($0))\"} \($1)" } + [
        "\(name)_bucket{le=\"+Inf\"} \(total)", "\(name)_sum \(sum)", "\(name)_count \(total)",
      ]
    }
    static func format(_ bound: Double) -> String { bound == bound.rounded() ? String(Int(bound)) : String(bound) }
  }

  func recordRequest(route: String, status: Int, seconds: Double?) {
    lock.withLock {
      requests[Pair(route: route, status: status), default: 0] += 1
      if let seconds { requestSeconds.observe(seconds) }
    }
  }

  func recordError(kind: String) { lock.withLock { errors[kind, default: 0] += 1 } }

  func recordBatch(size: Int, seconds: Double) {
    lock.withLock {
      batchSizes.observe(Double(size))
      largest = Swift.max(largest, size)
      inferenceSeconds.observe(seconds)
    }
  }

  func setQueueDepth(_ depth: Int) { lock.withLock { queueDepth = depth } }

  /// The largest batch run so far (0 before any).
  public var largestBatch: Int {
    lock.withLock { largest }
  }

  /// The exposition text (version 0.0.4).
  public func render() -> String {
    lock.withLock {
      var lines = [
        "# HELP detr_requests_total HTTP requests answered, by route and status.", "# TYPE detr_requests_total counter",
      ]
      for (pair, count) in requests.sorted(by: { ($0.key.route, $0.key.status) < ($1.key.route, $1.key.status) }) {
        lines.append("detr_requests_total{route=\"\(pair.route)\",status=\"\(pair.status)\"} \(count)")
      }
      lines += ["# HELP detr_errors_total Requests refused or failed, by kind.", "# TYPE detr_errors_total counter"]
      for (kind, count) in errors.sorted(by: { $0.key < $1.key }) { lines.append("detr_errors_total{kind=\"\(kind)\"} \(count)") }
      lines += [
        "# HELP detr_request_duration_seconds Time from a detection request's arrival to its answer.",
        "# TYPE detr_request_duration_seconds histogram",
      ]
      lines += requestSeconds.lines("detr_request_duration_seconds")
      lines += ["# HELP detr_inference_duration_seconds Time of one batched forward pass.", "# TYPE detr_inference_duration_seconds histogram"]
      lines += inferenceSeconds.lines("detr_inference_duration_seconds")
      lines += ["# HELP detr_batch_size Images per forward pass.", "# TYPE detr_batch_size histogram"]
      lines += batchSizes.lines("detr_batch_size")
      lines += ["# HELP detr_queue_depth Images waiting or running now.", "# TYPE detr_queue_depth gauge", "detr_queue_depth \(queueDepth)"]
      return lines.joined(separator: "\n") + "\n"
    }
  }
}
