import COCO
import Detection
import Torch

extension DetectionBatch {
  /// The batch as detectors take it: each image's unpadded size, detections reported in the
  /// original images' pixels, targets as tensors.
  public var detectorBatch: DetectorBatch {
    DetectorBatch(
      images: images, paddingMask: paddingMask, imageSizes: targets.map(\.size), outputSizes: targets.map(\.originalSize),
      targets: targets.map { target in
        MatchTarget(
          labels: Tensor(target.labels, shape: [target.labels.count]),
          boxes: Tensor(target.boxes.flatMap { $0.map(Float.init) }, shape: [target.boxes.count, 4]))
      })
  }
}
