import Foundation
import Testing
import Torch
import TorchTestSupport

@testable import COCO

@Suite struct TransformTests {
  @Test func outputSizeFollowsDETR() {
    #expect(DETRTransform.outputSize(width: 640, height: 480, shorterSide: 800, maxSize: 1333) == (1066, 800))
    #expect(DETRTransform.outputSize(width: 480, height: 640, shorterSide: 800, maxSize: 1333) == (800, 1066))
    #expect(DETRTransform.outputSize(width: 2000, height: 500, shorterSide: 800, maxSize: 1333) == (1332, 333))
    #expect(DETRTransform.outputSize(width: 800, height: 1000, shorterSide: 800, maxSize: 1333) == (800, 1000), "already the size")
  }

  @Test func evaluationTransformKeepsBoxesAligned() {
    var image = Image(width: 40, height: 20, color: RGB(0, 0, 0))
    for y in 5..<15 { for x in 10..<30 { image[x, y] = RGB(255, 255, 255) } }
    var transform = DETRTransform(mode: .evaluation)
    transform.evaluationSize = 40
    var random = SeededRandom(seed: 1)
    let sample = transform.apply(to: image, imageId: 3, boxes: [[10, 5, 30, 15]], labels: [2], isCrowd: [false], random: &random)
    #expect(sample.width == 80 && sample.height == 40)
    #expect(sample.target.boxes == [[0.5, 0.5, 0.5, 0.5]] && sample.target.labels == [2])
    #expect(sample.target.originalSize == (20, 40) && sample.target.size == (40, 80))
    let white = (1 - 0.485) / 0.229
    #expect(abs(Double(sample.pixels[20 * 80 + 40]) - white) < 1e-4, "normalized with ImageNet statistics")
  }

  @Test func trainingTransformIsDeterministicAndBoxesStayInside() {
    let image = Image(width: 60, height: 45, color: RGB(10, 20, 30))
    let transform = DETRTransform.scaled(.training, by: 0.1)
    let boxes: [[Double]] = [[5, 5, 30, 25], [35, 10, 55, 42], [0, 0, 3, 3]]
    for item in 0..<16 {
      var a = SeededRandom(seed: 4, stream: 0, item: UInt64(item))
      var b = SeededRandom(seed: 4, stream: 0, item: UInt64(item))
      let first = transform.apply(to: image, imageId: 1, boxes: boxes, labels: [0, 1, 2], isCrowd: [false, false, true], random: &a)
      let second = transform.apply(to: image, imageId: 1, boxes: boxes, labels: [0, 1, 2], isCrowd: [false, false, true], random: &b)
      #expect(first.target == second.target && first.pixels == second.pixels)
      #expect(!first.target.labels.contains(2), "crowd boxes are left out")
      #expect(transform.scales.contains(Swift.min(first.width, first.height)) || Swift.max(first.width, first.height) <= transform.maxSize)
      for box in first.target.boxes {
        #expect(box[2] > 0 && box[3] > 0 && box[0] - box[2] / 2 >= -1e-9 && box[0] + box[2] / 2 <= 1 + 1e-9)
      }
    }
  }

  @Test func flipAugmentationOnlyFlipsAtTheEvaluationSize() {
    var image = Image(width: 40, height: 20, color: RGB(0, 0, 0))
    for y in 5..<15 { for x in 0..<10 { image[x, y] = RGB(255, 255, 255) } }
    var transform = DETRTransform(mode: .training)
    transform.augmentation = .flip
    transform.evaluationSize = 40
    var flipped = 0
    for item in 0..<16 {
      var random = SeededRandom(seed: 9, stream: 0, item: UInt64(item))
      let sample = transform.apply(to: image, imageId: 1, boxes: [[0, 5, 10, 15]], labels: [0], isCrowd: [false], random: &random)
      #expect(sample.width == 80 && sample.height == 40, "the evaluation size, 40 pixels on the shorter side")
      let box = sample.target.boxes[0]
      #expect(abs(box[1] - 0.5) < 1e-9 && abs(box[2] - 0.25) < 1e-9 && abs(box[3] - 0.5) < 1e-9)
      let isFlipped = abs(box[0] - 0.875) < 1e-9
      #expect(isFlipped || abs(box[0] - 0.125) < 1e-9, "only flipped, never cropped: \(box)")
      let whiteColumn = isFlipped ? 75 : 4
      #expect(Double(sample.pixels[20 * 80 + whiteColumn]) > 2, "the pixels follow the box")
      if isFlipped { flipped += 1 }
    }
    #expect(flipped > 2 && flipped < 14, "about half are flipped: \(flipped) of 16")
  }
}

@Suite struct LoaderTests {
  func loader(batchSize: Int = 4, skip: Bool = false, dataset: DetectionDataset? = nil) throws -> DetectionLoader {
    let data =
      try dataset
      ?? DetectionDataset(
        annotationsFile: syntheticFolder.appendingPathComponent("annotations/train.json"),
        imageDirectory: syntheticFolder.appendingPathComponent("images"))
    return DetectionLoader(
      dataset: data, transform: .scaled(.training, by: 0.2), batchSize: batchSize, shuffle: true, seed: 11, workerCount: 2,
      prefetchBatches: 2,
      padToMultipleOf: 32, skipUnreadableImages: skip)
  }

  @Test func batchesArePaddedWithMasks() throws {
    let stream = try loader().batches(epoch: 0)
    let first = try #require(try stream.nextBatch()?.batch)
    let shape = first.images.shape
    #expect(shape[0] == 4 && shape[1] == 3 && shape[2] % 32 == 0 && shape[3] % 32 == 0)
    #expect(first.paddingMask.shape == [4, shape[2], shape[3]])
    for (index, target) in first.targets.enumerated() {
      let unpadded = first.paddingMask[index, 0..<target.size.height, 0..<target.size.width]
      #expect(!unpadded.any().item(Bool.self), "no padding inside the image")
      let padded = first.paddingMask[index].sum().item(Int.self)
      #expect(padded == shape[2] * shape[3] - target.size.height * target.size.width)
      #expect(
        first.images[index].selecting(where: first.paddingMask[index].unsqueezed(dim: 0).expanded(to: [3, -1, -1])).abs().sum().item(
          Float.self) == 0)
    }
  }

  @Test func anEpochIsTheSameWhateverTheTimingAndResumesMidway() throws {
    let loader = try loader()
    #expect(loader.order(epoch: 0) != loader.order(epoch: 1), "shuffled per epoch")
    #expect(loader.order(epoch: 3) == loader.order(epoch: 3))
    let full = Array(loader.batches(epoch: 2)).compactMap(\.batch)
    #expect(full.count == loader.batchesPerEpoch)
    let resumed = Array(loader.batches(epoch: 2, fromSample: 3 * loader.batchSize)).compactMap(\.batch)
    #expect(resumed.count == full.count - 3)
    for (a, b) in zip(full.dropFirst(3), resumed) {
      #expect(a.targets == b.targets)
      #expect(a.images.isClose(to: b.images, relativeTolerance: 0, absoluteTolerance: 0))
    }
    let sampleCount = full.reduce(0) { $0 + $1.targets.count }
    #expect(sampleCount == loader.dataset.samples.count)
  }

  /// Pinned batches (for a model on a GPU) hold the same values; without a GPU, pinning changes nothing.
  @Test func pinnedBatchesAreTheSameBatches() throws {
    let plain = try loader()
    let pinned = DetectionLoader(
      dataset: plain.dataset, transform: plain.transform, batchSize: plain.batchSize, shuffle: true, seed: plain.seed, workerCount: 2,
      prefetchBatches: 2, padToMultipleOf: 32, pinMemory: true)
    #expect(pinned.sharded(.init(index: 0, count: 2, equalLength: true)).pinMemory)
    let a = Array(plain.batches(epoch: 1)).compactMap(\.batch).prefix(3)
    let b = Array(pinned.batches(epoch: 1)).compactMap(\.batch).prefix(3)
    #expect(a.count == 3 && b.count == 3)
    for (x, y) in zip(a, b) {
      #expect(x.targets == y.targets)
      #expect(x.images.isClose(to: y.images, relativeTolerance: 0, absoluteTolerance: 0))
      #expect((x.paddingMask .== y.paddingMask).all().item(Bool.self))
    }
  }

  /// DistributedSampler's semantics: each step of two shards of batch 2 reads the samples of one step of
  /// batch 4 in one process, with the same augmentation; the last round is completed from the start.
  @Test func shardsDealTheGlobalOrderInTurns() throws {
    let whole = try loader(batchSize: 4)
    let half = try loader(batchSize: 2)
    let shards = (0..<2).map { half.sharded(.init(index: $0, count: 2, equalLength: true)) }
    let count = whole.dataset.samples.count
    for start in [0, 6, count - 5] {
      let global = Array(whole.order(epoch: 1).dropFirst(start))
      let parts = shards.map { $0.shardOrder(epoch: 1, fromSample: start) }
      #expect(parts[0].count == parts[1].count && parts[0].count == (global.count + 1) / 2)
      #expect(Set(parts[0] + parts[1]) == Set(global), "from \(start): every remaining sample, in one of the shards")
      for position in 0..<global.count { #expect(parts[position % 2][position / 2] == global[position]) }
      #expect(shards[0].batchCount(fromSample: start) == (parts[0].count + 1) / 2, "batches of 2")
    }
    // Unequal shards (evaluation) hold each sample exactly once.
    let evaluation = (0..<3).map { whole.sharded(.init(index: $0, count: 3, equalLength: false)).shardOrder(epoch: 0, fromSample: 0) }
    #expect(evaluation.flatMap { $0 }.sorted() == Array(0..<count))
    // Two batches of the shards are the samples of the first two whole batches, transformed identically.
    let wholeBatches = Array(whole.batches(epoch: 1).prefix(2)).compactMap(\.batch)
    let shardBatches = shards.map { Array($0.batches(epoch: 1).prefix(2)).compactMap(\.batch) }
    for step in 0..<2 {
      let merged = (shardBatches[0][step].targets + shardBatches[1][step].targets).sorted { $0.imageId < $1.imageId }
      #expect(merged == wholeBatches[step].targets.sorted { $0.imageId < $1.imageId })
    }
  }

  @Test func droppingAStreamEarlyStopsItsWorkers() throws {
    for _ in 0..<5 {
      let stream = try loader(batchSize: 2).batches(epoch: 0)
      _ = try stream.nextBatch()
    }
    #expect(Bool(true), "no deadlock or crash when streams are dropped mid-epoch")
  }

  @Test func unreadableImagesFailTheBatchOrAreSkippedAndReported() throws {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("swift-detr-broken-\(UUID())")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: folder) }
    try Data(contentsOf: syntheticFolder.appendingPathComponent("images/000001.jpg")).write(to: folder.appendingPathComponent("good.jpg"))
    try Data("not an image".utf8).write(to: folder.appendingPathComponent("bad.jpg"))
    let data = COCOAnnotations(
      images: [.init(id: 1, fileName: "good.jpg", width: 128, height: 128), .init(id: 2, fileName: "bad.jpg", width: 128, height: 128)],
      annotations: [], categories: [.init(id: 1, name: "shape")])
    let dataset = try DetectionDataset(annotations: data, imageDirectory: folder)
    #expect { try loader(batchSize: 2, dataset: dataset).batches(epoch: 0).nextBatch() } throws: { "\($0)".contains("bad.jpg") }
    let skipped = try #require(try loader(batchSize: 2, skip: true, dataset: dataset).batches(epoch: 0).nextBatch())
    #expect(skipped.batch?.targets.count == 1 && skipped.skipped.count == 1 && skipped.skipped[0].path.hasSuffix("bad.jpg"))
  }
}
