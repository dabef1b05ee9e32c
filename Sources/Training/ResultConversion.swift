import COCO
import COCOEval
import Detection
import Foundation

extension ImageDetections {
  /// The detections as COCO results of `imageId`: boxes as [x, y, w, h], classes as the dataset's
  /// category ids. Classes the category map does not know are left out.
  public func cocoResults(imageId: Int, categories: CategoryMap) -> [DetectedBox] {
    zip(scores, zip(labels, boxes)).compactMap { score, labelled in
      let (label, box) = labelled
      guard label < categories.count else { return nil }
      return DetectedBox(
        imageId: imageId, categoryId: categories.categoryId(ofIndex: label), box: [box[0], box[1], box[2] - box[0], box[3] - box[1]],
        score: Double(score))
    }
  }
}
