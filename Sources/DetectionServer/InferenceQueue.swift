import COCO
import Detection
import Foundation
import Training

/// Gathers concurrent detection requests into batches and runs them one batch at a time on its own
/// thread, so that memory stays bounded and the server's event loops never wait on a forward pass.
///
/// A batch starts with the oldest waiting image and takes the later ones of the same padded size
/// (up to `maxBatch`), waiting at most `maxDelay` after the first arrived for others to join; images
/// of another size wait for a batch of their own (padding one image to another's size would change
/// its detections, see `LoadedDetector.equalSizeBatches`). At most `capacity` images wait or run at
/// once; past it `submit` throws `ServeError.overloaded` at once, never queueing without bound.
final class InferenceQueue: @unchecked Sendable {
  typealias Run = @Sendable ([TransformedSample]) -> [ImageDetections]

  private let condition = NSCondition()
  private var waiting: [Job] = []
  private var running = 0
  private var stopped = false
  private var worker: Thread?
  private let finished = DispatchSemaphore(value: 0)

  let maxBatch: Int
  let maxDelay: Duration
  let capacity: Int
  let run: Run
  let metrics: ServerMetrics

  init(maxBatch: Int, maxDelay: Duration, capacity: Int, metrics: ServerMetrics, run: @escaping Run) {
    precondition(maxBatch > 0 && capacity > 0, "InferenceQueue: the batch and the capacity must be positive")
    (self.maxBatch, self.maxDelay, self.capacity, self.metrics, self.run) = (maxBatch, maxDelay, capacity, metrics, run)
  }

  /// What a request gets back: its detections and the size of the batch they were computed in.
  struct Answer: Sendable {
    var detections: ImageDetections
    var batchSize: Int
  }

  /// One waiting image and the request waiting for it; answered exactly once (by the worker, by its
  /// timeout or by a stop).
  private final class Job: @unchecked Sendable {
    let input: TransformedSample
    let size: LoadedDetector.InputSize
    let arrival = ContinuousClock.now
    private let lock = NSLock()
    private var continuation: CheckedContinuation<Answer, any Error>?

    init(input: TransformedSample, size: LoadedDetector.InputSize, continuation: CheckedContinuation<Answer, any Error>) {
      (self.input, self.size, self.continuation) = (input, size, continuation)
    }

    var isAnswered: Bool { lock.withLock { continuation == nil } }

    func answer(_ result: Result<Answer, any Error>) {
      let pending: CheckedContinuation<Answer, any Error>? = lock.withLock {
        defer { continuation = nil }
        return continuation
      }
      pending?.resume(with: result)
    }
  }

  func start() {
    let thread = Thread { [self] in
      workLoop()
      finished.signal()
    }
    thread.name = "detr-inference"
    thread.stackSize = 8 << 20
    worker = thread
    thread.start()
  }

  /// The detections of `input` (padded size `size`), computed in a batch; throws
  /// `ServeError.overloaded` when the queue is full, `.timedOut` past `timeout`, `.stopping` after `stop`.
  func submit(_ input: TransformedSample, size: LoadedDetector.InputSize, timeout: Duration) async throws -> Answer {
    try await withCheckedThrowingContinuation { continuation in
      let job = Job(input: input, size: size, continuation: continuation)
      condition.lock()
      if stopped {
        condition.unlock()
        job.answer(.failure(ServeError.stopping))
        return
      }
      guard waiting.count + running < capacity else {
        condition.unlock()
        job.answer(.failure(ServeError.overloaded))
        return
      }
      waiting.append(job)
      metrics.setQueueDepth(waiting.count + running)
      condition.signal()
      condition.unlock()
      let (seconds, attoseconds) = timeout.components
      let nanoseconds = Int(seconds) * 1_000_000_000 + Int(attoseconds / 1_000_000_000)
      // Weakly: the timer must not keep an answered job (and its input image) alive until it fires.
      DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(nanoseconds)) { [weak job] in job?.answer(.failure(ServeError.timedOut)) }
    }
  }

  /// Runs what is queued, then ends the worker; later submissions get `.stopping`. Waits for the worker.
  func stop() {
    condition.lock()
    stopped = true
    condition.broadcast()
    condition.unlock()
    if worker != nil { finished.wait() }
    worker = nil
  }

  private func workLoop() {
    while let batch = nextBatch() {
      let started = ContinuousClock.now
      let found = run(batch.map(\.input))
      let seconds = Self.seconds(ContinuousClock.now - started)
      metrics.recordBatch(size: batch.count, seconds: seconds)
      for (job, detections) in zip(batch, found) { job.answer(.success(Answer(detections: detections, batchSize: batch.count))) }
      condition.lock()
      running = 0
      metrics.setQueueDepth(waiting.count)
      condition.unlock()
    }
  }

  /// The next batch to run, or nil once stopped with nothing left.
  private func nextBatch() -> [Job]? {
    condition.lock()
    defer { condition.unlock() }
    while true {
      waiting.removeAll { $0.isAnswered }
      guard let first = waiting.first else {
        if stopped { return nil }
        condition.wait()
        continue
      }
      let deadline = first.arrival + maxDelay
      let sameSize = waiting.lazy.filter { $0.size == first.size }.count
      if sameSize < maxBatch && !stopped && ContinuousClock.now < deadline {
        _ = condition.wait(until: Date(timeIntervalSinceNow: Self.seconds(deadline - ContinuousClock.now)))
        continue
      }
      var batch: [Job] = []
      waiting.removeAll { job in
        guard batch.count < maxBatch && job.size == first.size else { return false }
        batch.append(job)
        return true
      }
      running = batch.count
      return batch
    }
  }

  static func seconds(_ duration: Duration) -> Double {
    let (seconds, attoseconds) = duration.components
    return Double(seconds) + Double(attoseconds) / 1e18
  }
}
