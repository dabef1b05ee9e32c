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
  /// at most `maxSize` (DETR's 800 and 1333 by default), as `resizing` says, and normalized with
  /// ImageNet's statistics; then padded as the detector wants (`inputSizeDivisor`).
  /// `precision`: the forward pass's arithmetic (bfloat16 autocast is fast only on CPUs with bfloat16 instructions).
  public func detections(
    in image: Image, shorterSide: Int = 800, maxSize: Int = 1333, resizing: DETRTransform.Resizing = .detr, precision: Precision = .fp32
  ) -> ImageDetections {
    var transform = DETRTransform(mode: .evaluation)
    (transform.evaluationSize, transform.maxSize, transform.resizing) = (shorterSide, maxSize, resizing)
    var random = SeededRandom(seed: 0)
    let sample = transform.apply(to: image, imageId: 0, boxes: [], labels: [], isCrowd: [], random: &random)
    return withInferenceMode {
      precision.run(on: detector.device) { detector.detect(DetectionBatch(samples: [sample], padToMultipleOf: detector.inputSizeDivisor).detectorBatch(for: detector))[0] }
    }
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
