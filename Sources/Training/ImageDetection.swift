import COCO
import Detection
import Foundation
import Torch

/// One detected object, as a program using swift-detr reads it.
public struct DetectedObject: Sendable, Equatable {
  /// The dataset's category id (COCO's for COCO checkpoints) and its name.
  public var categoryId: Int
  public var name: String
  public var score: Float
  /// (x0, y0, x1, y1) in pixels of the image as given.
  public var box: [Double]
}

extension LoadedDetector {
  /// All the detector's detections for `image` (every candidate, unfiltered), boxes (x0, y0, x1, y1) in
  /// pixels of `image`. The image is resized as for evaluation: shorter side `shorterSide`, longer side
  /// at most `maxSize`, as `resizing` says (by default the input the checkpoint records, else DETR's 800
  /// and 1333; a `shorterSide` alone scales the longer side's limit with it), and normalized with
  /// ImageNet's statistics; then padded as the detector wants (`inputSizeDivisor`).
  /// `precision`: the forward pass's arithmetic (bfloat16 autocast is fast only on CPUs with bfloat16 instructions).
  public func detections(
    in image: Image, shorterSide: Int? = nil, maxSize: Int? = nil, resizing: DETRTransform.Resizing? = nil, precision: Precision = .fp32
  ) -> ImageDetections {
    detections(inInputs: [input(for: image, shorterSide: shorterSide, maxSize: maxSize, resizing: resizing)], precision: precision)[0]
  }

  /// What reaches the detector for `image`, before padding: resized as `detections(in:)` says and
  /// normalized, `[3, height, width]` row-major; its target records the image's own size, in which
  /// detections are reported.
  public func input(
    for image: Image, shorterSide: Int? = nil, maxSize: Int? = nil, resizing: DETRTransform.Resizing? = nil
  ) -> TransformedSample {
    let transform = resolvedInput(shorterSide: shorterSide, maxSize: maxSize, resizing: resizing).evaluationTransform
    var random = SeededRandom(seed: 0)
    return transform.apply(to: image, imageId: 0, boxes: [], labels: [], isCrowd: [], random: &random)
  }

  /// The size an input has once padded as the detector wants (`inputSizeDivisor`): inputs of equal
  /// padded size give, run together, what each gives alone; others would see each other's padding
  /// in the backbone's convolutions (see `equalSizeBatches`).
  public func paddedSize(of input: TransformedSample) -> InputSize {
    let multiple = Swift.max(1, detector.inputSizeDivisor)
    return InputSize(height: (input.height + multiple - 1) / multiple * multiple, width: (input.width + multiple - 1) / multiple * multiple)
  }

  /// All detections (unfiltered) for each input, run as one batch, boxes (x0, y0, x1, y1) in pixels of
  /// each input's original image. Every input must have the same `paddedSize`, so that each answer
  /// equals the input's alone (to float rounding: a batched matrix product may sum in another order).
  public func detections(inInputs inputs: [TransformedSample], precision: Precision = .fp32) -> [ImageDetections] {
    precondition(!inputs.isEmpty, "detections: no inputs")
    precondition(Set(inputs.map { paddedSize(of: $0) }).count == 1, "detections: a batch's inputs must pad to one size (see equalSizeBatches)")
    return withInferenceMode {
      precision.run(on: detector.device) {
        detector.detect(DetectionBatch(samples: inputs, padToMultipleOf: detector.inputSizeDivisor).detectorBatch(for: detector))
      }
    }
  }

  /// All detections for each image (as `detections(in:)`), run in batches of at most `batchSize`
  /// images of equal padded size; in the order of `images`.
  public func detections(
    in images: [Image], batchSize: Int, shorterSide: Int? = nil, maxSize: Int? = nil, resizing: DETRTransform.Resizing? = nil,
    precision: Precision = .fp32
  ) -> [ImageDetections] {
    let inputs = images.map { input(for: $0, shorterSide: shorterSide, maxSize: maxSize, resizing: resizing) }
    var results = [ImageDetections?](repeating: nil, count: images.count)
    for batch in Self.equalSizeBatches(inputs.map(paddedSize(of:)), limit: batchSize) {
      for (index, found) in zip(batch, detections(inInputs: batch.map { inputs[$0] }, precision: precision)) { results[index] = found }
    }
    return results.map { $0! }
  }

  /// A padded input size.
  public struct InputSize: Hashable, Sendable {
    public var height: Int
    public var width: Int
    public init(height: Int, width: Int) { (self.height, self.width) = (height, width) }
  }

  /// Indices into `sizes` grouped into batches of at most `limit` equal sizes. Each batch keeps the
  /// order of `sizes`; batches come in the order of their first index. Images are not padded to one
  /// another's size because the backbone's convolutions would see the padding: near the right and
  /// bottom borders features change, and so would the detections.
  public static func equalSizeBatches(_ sizes: [InputSize], limit: Int) -> [[Int]] {
    precondition(limit > 0, "equalSizeBatches: the limit must be positive")
    var open: [InputSize: Int] = [:]
    var batches: [[Int]] = []
    for (index, size) in sizes.enumerated() {
      if let batch = open[size], batches[batch].count < limit {
        batches[batch].append(index)
      } else {
        open[size] = batches.count
        batches.append([index])
      }
    }
    return batches
  }

  /// The objects in `image` scoring above `threshold`, best first, at most `limit`.
  ///
  ///     let loaded = try DetectorCheckpoint.load(URL(fileURLWithPath: "weights/detr-r50"))
  ///     for object in loaded.detect(try Image(contentsOf: photo)) { print(object.name, object.score, object.box) }
  public func detect(
    _ image: Image, threshold: Float = 0.5, limit: Int = 100, shorterSide: Int = 800, maxSize: Int = 1333,
    resizing: DETRTransform.Resizing = .detr
  ) -> [DetectedObject] {
    let found = detections(in: image, shorterSide: shorterSide, maxSize: maxSize, resizing: resizing).filtered(threshold: threshold, limit: limit)
    return zip(found.labels, zip(found.scores, found.boxes)).map { label, scored in
      DetectedObject(categoryId: categories.categoryId(ofIndex: label), name: categories.name(ofIndex: label), score: scored.0, box: scored.1)
    }
  }
}
