import Foundation

/// Decodes and transforms batches on background threads, ahead of the consumer.
///
/// The order of an epoch is a permutation drawn from (seed, epoch); each sample's augmentation draws
/// from (seed, epoch, sample index). So batches are the same whatever the thread timing, and an epoch
/// can resume at any sample (`batches(epoch:fromSample:)`) exactly as if it had not stopped.
///
/// In data-parallel training each process reads one shard: the rest of the epoch's order is dealt to
/// the shards in turn (PyTorch's DistributedSampler), so the same seed gives the same global order
/// whatever the number of processes, and a run resumes at a global sample position with any number.
public final class DetectionLoader: Sendable {
  /// Which part of each epoch a process reads: the samples at positions `index`, `index + count`, ...
  /// of the order. With `equalLength` every shard gets as many samples, the last round completed
  /// from the start of the order (for training, where every process takes the same number of steps);
  /// without, the shards are disjoint and together hold each sample once (for evaluation).
  public struct Shard: Sendable, Equatable {
    public var index: Int
    public var count: Int
    public var equalLength: Bool
    public init(index: Int, count: Int, equalLength: Bool) {
      precondition(count > 0 && (0..<count).contains(index), "shard \(index) of \(count)")
      self.index = index
      self.count = count
      self.equalLength = equalLength
    }
    /// The whole dataset in one process.
    public static let whole = Shard(index: 0, count: 1, equalLength: true)
  }

  public let dataset: DetectionDataset
  public let transform: DETRTransform
  public let batchSize: Int
  public let shuffle: Bool
  public let seed: UInt64
  public let dropLast: Bool
  public let workerCount: Int
  public let prefetchBatches: Int
  public let padToMultipleOf: Int?
  /// Leave out images that cannot be decoded (reported per batch) instead of failing.
  public let skipUnreadableImages: Bool
  /// The part of each epoch this loader reads.
  public let shard: Shard
  /// Put each batch's images and mask in page-locked memory on the loader's threads, so that the copy
  /// to a GPU can run while the host goes on (for a model on a GPU; nothing changes without one).
  public let pinMemory: Bool

  public init(
    dataset: DetectionDataset, transform: DETRTransform, batchSize: Int, shuffle: Bool, seed: UInt64, dropLast: Bool = false,
    workerCount: Int = 2, prefetchBatches: Int = 4, padToMultipleOf: Int? = nil, skipUnreadableImages: Bool = false,
    shard: Shard = .whole, pinMemory: Bool = false
  ) {
    precondition(batchSize > 0 && workerCount > 0 && prefetchBatches > 0, "loader sizes must be positive")
    self.dataset = dataset
    self.transform = transform
    self.batchSize = batchSize
    self.shuffle = shuffle
    self.seed = seed
    self.dropLast = dropLast
    self.workerCount = workerCount
    self.prefetchBatches = prefetchBatches
    self.padToMultipleOf = padToMultipleOf
    self.skipUnreadableImages = skipUnreadableImages
    self.shard = shard
    self.pinMemory = pinMemory
  }

  /// The same loader reading another shard.
  public func sharded(_ shard: Shard) -> DetectionLoader {
    DetectionLoader(
      dataset: dataset, transform: transform, batchSize: batchSize, shuffle: shuffle, seed: seed, dropLast: dropLast,
      workerCount: workerCount, prefetchBatches: prefetchBatches, padToMultipleOf: padToMultipleOf,
      skipUnreadableImages: skipUnreadableImages, shard: shard, pinMemory: pinMemory)
  }

  /// Global samples one step of all shards together takes (`batchSize` × shards).
  public var samplesPerStep: Int { batchSize * shard.count }

  /// This shard's batches in a whole epoch.
  public var batchesPerEpoch: Int { batchCount(fromSample: 0) }

  /// This shard's batches in the rest of an epoch from global sample position `start`.
  public func batchCount(fromSample start: Int) -> Int {
    let samples = shardSampleCount(remaining: Swift.max(0, dataset.samples.count - start))
    return dropLast ? samples / batchSize : (samples + batchSize - 1) / batchSize
  }

  private func shardSampleCount(remaining: Int) -> Int {
    let perShard = (remaining + shard.count - 1) / shard.count
    if shard.equalLength || remaining == 0 { return perShard }
    return (remaining - shard.index + shard.count - 1) / shard.count
  }

  /// This shard's samples of `epoch` from global position `start` on, in order: every `shard.count`-th
  /// of the rest of the epoch's order, from `shard.index` (completed from the rest's start when equal lengths are asked).
  public func shardOrder(epoch: Int, fromSample start: Int) -> [Int] {
    let rest = Array(order(epoch: epoch).dropFirst(start))
    guard shard.count > 1 else { return rest }
    let count = shardSampleCount(remaining: rest.count)
    return (0..<count).map { rest[(shard.index + $0 * shard.count) % rest.count] }
  }

  /// Sample indices of an epoch, in order (a Fisher-Yates shuffle from (seed, epoch) when shuffling).
  public func order(epoch: Int) -> [Int] {
    var indices = Array(dataset.samples.indices)
    guard shuffle else { return indices }
    var random = SeededRandom(seed: seed, stream: 1, item: UInt64(epoch))
    for i in stride(from: indices.count - 1, to: 0, by: -1) {
      indices.swapAt(i, random.integer(0, i))
    }
    return indices
  }

  /// Decodes and transforms one sample (also usable alone, e.g. for prediction).
  public func load(sampleAt index: Int, epoch: Int) throws -> TransformedSample {
    let sample = dataset.samples[index]
    let image = try Image(contentsOf: sample.url)
    var random = SeededRandom(seed: seed, stream: 2 + UInt64(epoch), item: UInt64(index))
    // Boxes are in the annotated size; rescale if the file's size differs from the annotation's.
    let sx = Double(image.width) / Double(sample.width)
    let sy = Double(image.height) / Double(sample.height)
    let boxes = sx == 1 && sy == 1 ? sample.boxes : sample.boxes.map { [$0[0] * sx, $0[1] * sy, $0[2] * sx, $0[3] * sy] }
    return transform.apply(
      to: image, imageId: sample.imageId, boxes: boxes, labels: sample.labels, isCrowd: sample.isCrowd, random: &random)
  }

  /// This shard's batches of `epoch` from global sample position `start` on, produced in the background.
  /// Batch indices count from that position.
  public func batches(epoch: Int, fromSample start: Int = 0) -> BatchStream {
    let order = shardOrder(epoch: epoch, fromSample: start)
    let groups = (0..<batchCount(fromSample: start)).map { index in
      Array(order[(index * batchSize)..<Swift.min((index + 1) * batchSize, order.count)])
    }
    return BatchStream(loader: self, epoch: epoch, batches: groups)
  }

  /// The evaluation batches of this shard: at most `batchSize` images each, all of one padded size
  /// (by the sizes the annotations give, through the evaluation transform), so that each image's
  /// detections equal its own alone; padding one image to another's size would change what the
  /// backbone's convolutions see near its right and bottom borders. Images keep their order within a
  /// size; a size's batches come in the order of their first image.
  public func equalSizeBatches() -> BatchStream {
    let multiple = Swift.max(1, padToMultipleOf ?? 1)
    func roundUp(_ value: Int) -> Int { (value + multiple - 1) / multiple * multiple }
    var open: [[Int]: Int] = [:]
    var groups: [[Int]] = []
    for index in shardOrder(epoch: 0, fromSample: 0) {
      let sample = dataset.samples[index]
      let size = transform.evaluationOutputSize(width: sample.width, height: sample.height).map { [roundUp($0.height), roundUp($0.width)] } ?? []
      if let group = open[size], groups[group].count < batchSize {
        groups[group].append(index)
      } else {
        open[size] = groups.count
        groups.append([index])
      }
    }
    return BatchStream(loader: self, epoch: 0, batches: groups)
  }
}

/// A batch and the images left out of it.
public struct LoadedBatch: @unchecked Sendable {
  public var index: Int
  public var batch: DetectionBatch?
  /// Images that could not be decoded, with the reason (only when the loader skips them).
  public var skipped: [ImageError]
}

/// Batches of one epoch in order, prepared by worker threads at most `prefetchBatches` ahead.
/// Stop early by dropping the stream: workers finish their current batch and exit.
public final class BatchStream: Sequence, IteratorProtocol, @unchecked Sendable {
  private let queue: BatchQueue

  /// `batches`: each batch's sample indices, in the order they are returned.
  init(loader: DetectionLoader, epoch: Int, batches: [[Int]]) {
    queue = BatchQueue(loader: loader, epoch: epoch, batches: batches)
    for _ in 0..<loader.workerCount {
      let thread = Thread { [queue] in queue.work() }
      thread.stackSize = 8 << 20
      thread.start()
    }
  }

  deinit { queue.cancel() }

  /// The next batch; throws the error of an image that could not be read (unless skipping).
  public func nextBatch() throws -> LoadedBatch? { try queue.next() }

  /// Iterating stops the program on an unreadable image; use `nextBatch()` to handle the error.
  public func next() -> LoadedBatch? {
    do {
      return try nextBatch()
    } catch {
      fatalError("\(error)")
    }
  }
}

/// The state shared by a stream and its workers.
private final class BatchQueue: @unchecked Sendable {
  private let loader: DetectionLoader
  private let epoch: Int
  private let groups: [[Int]]
  private let end: Int
  private let condition = NSCondition()
  private var ready: [Int: Result<LoadedBatch, Error>] = [:]
  private var nextToClaim: Int
  private var nextToReturn: Int
  private var cancelled = false

  init(loader: DetectionLoader, epoch: Int, batches: [[Int]]) {
    self.loader = loader
    self.epoch = epoch
    groups = batches
    end = batches.count
    nextToClaim = 0
    nextToReturn = 0
  }

  func cancel() {
    condition.lock()
    cancelled = true
    condition.broadcast()
    condition.unlock()
  }

  func next() throws -> LoadedBatch? {
    condition.lock()
    defer { condition.unlock() }
    guard nextToReturn < end else { return nil }
    while ready[nextToReturn] == nil { condition.wait() }
    let result = ready.removeValue(forKey: nextToReturn)!
    nextToReturn += 1
    condition.broadcast()
    return try result.get()
  }

  func work() {
    while true {
      condition.lock()
      while !cancelled && nextToClaim < end && nextToClaim - nextToReturn >= loader.prefetchBatches { condition.wait() }
      if cancelled || nextToClaim >= end {
        condition.unlock()
        return
      }
      let index = nextToClaim
      nextToClaim += 1
      condition.unlock()
      let result = Result { try produce(index) }
      condition.lock()
      ready[index] = result
      condition.broadcast()
      condition.unlock()
    }
  }

  private func produce(_ index: Int) throws -> LoadedBatch {
    let indices = groups[index]
    var samples: [TransformedSample] = []
    var skipped: [ImageError] = []
    for sampleIndex in indices {
      do {
        samples.append(try loader.load(sampleAt: sampleIndex, epoch: epoch))
      } catch let error as ImageError where loader.skipUnreadableImages {
        skipped.append(error)
      }
    }
    var batch = samples.isEmpty ? nil : DetectionBatch(samples: samples, padToMultipleOf: loader.padToMultipleOf)
    if loader.pinMemory, let made = batch {
      batch?.images = made.images.pinned()
      batch?.paddingMask = made.paddingMask.pinned()
    }
    return LoadedBatch(index: index, batch: batch, skipped: skipped)
  }
}
