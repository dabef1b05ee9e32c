import COCO
import Detection
import Foundation
import Torch
import Training

/// Runs a loaded detector on image files one at a time and draws what it finds: the work of
/// `detr predict`, shared with `detr demo`.
struct ImagePredictor {
  let loaded: LoadedDetector
  let shorterSide: Int
  let maxSize: Int
  /// Detections scoring at most this are dropped.
  let threshold: Float
  let maxDetections: Int
  var precision = Precision.fp32
  var resizing = DETRTransform.Resizing.detr

  init(loaded: LoadedDetector, shorterSide: Int, maxSize: Int, threshold: Float, maxDetections: Int) {
    (self.loaded, self.shorterSide, self.maxSize) = (loaded, shorterSide, maxSize)
    (self.threshold, self.maxDetections) = (threshold, maxDetections)
  }

  /// The image and its detections, boxes (x0, y0, x1, y1) in pixels of the image as stored.
  func detect(_ file: URL, imageId: Int) throws -> (image: Image, detections: ImageDetections) {
    let image = try Image(contentsOf: file)
    let detections = loaded.detections(in: image, shorterSide: shorterSide, maxSize: maxSize, resizing: resizing, precision: precision).filtered(
      threshold: threshold, limit: maxDetections)
    return (image, detections)
  }

  /// Each file's image and detections, in order: the files decoded on `decoders` threads at once, then
  /// run in batches of at most `batchSize` images of one resized size (so each image's detections are
  /// its own alone). A file that cannot be read gives its error and leaves the others as they are.
  func detect(_ files: [URL], batchSize: Int, decoders: Int = 2) -> [Result<(image: Image, detections: ImageDetections), any Error>] {
    let decoded = Self.decode(files, threads: decoders)
    let readable = decoded.indices.filter { (try? decoded[$0].get()) != nil }
    let found = loaded.detections(
      in: readable.map { try! decoded[$0].get() }, batchSize: batchSize, shorterSide: shorterSide, maxSize: maxSize, resizing: resizing,
      precision: precision)
    var results = decoded.map { $0.map { (image: $0, detections: ImageDetections(scores: [], labels: [], boxes: [])) } }
    for (index, detections) in zip(readable, found) {
      results[index] = results[index].map { ($0.image, detections.filtered(threshold: threshold, limit: maxDetections)) }
    }
    return results
  }

  /// The files decoded, `threads` at a time.
  static func decode(_ files: [URL], threads: Int) -> [Result<Image, any Error>] {
    let lock = NSLock()
    nonisolated(unsafe) var results = [Result<Image, any Error>?](repeating: nil, count: files.count)
    let next = ManagedCounter()
    DispatchQueue.concurrentPerform(iterations: Swift.max(1, Swift.min(threads, files.count))) { _ in
      while let index = next.take(below: files.count) {
        let result = Result { try Image(contentsOf: files[index]) }
        lock.withLock { results[index] = result }
      }
    }
    return results.map { $0! }
  }

  /// Hands out 0, 1, 2, ... to threads.
  final class ManagedCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0
    func take(below end: Int) -> Int? {
      lock.withLock {
        guard value < end else { return nil }
        defer { value += 1 }
        return value
      }
    }
  }

  /// The image with each detection's box and "class score" caption drawn, coloured by class.
  func drawn(_ image: Image, _ detections: ImageDetections) -> Image {
    var drawn = image
    drawn.draw(
      zip(detections.labels, zip(detections.scores, detections.boxes)).map { label, scored in
        DrawnBox(box: scored.1, classIndex: label, caption: "\(loaded.categories.name(ofIndex: label)) \(String(format: "%.2f", scored.0))")
      })
    return drawn
  }
}
