import COCO
import Detection
import Detectors
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

  /// The batch as `detector` takes it, on the detector's device (copied from page-locked memory,
  /// asynchronously, to a GPU).
  public func detectorBatch(for detector: any Detector) -> DetectorBatch {
    detectorBatch.to(device: detector.device, pinned: true)
  }
}
