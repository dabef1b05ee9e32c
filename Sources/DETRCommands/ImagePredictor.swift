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
