import Torch

/// Box formats and geometry on tensors of boxes `[..., 4]`.
///
/// Formats: center (cx, cy, w, h), corners (x0, y0, x1, y1), COCO (x, y, w, h).
public enum Boxes {
  /// (cx, cy, w, h) → (x0, y0, x1, y1).
  public static func centerToCorners(_ boxes: Tensor) -> Tensor {
    let (cx, cy, w, h) = components(boxes)
    return Tensor.stack([cx - w * 0.5, cy - h * 0.5, cx + w * 0.5, cy + h * 0.5], dim: -1)
  }

  /// (x0, y0, x1, y1) → (cx, cy, w, h).
  public static func cornersToCenter(_ boxes: Tensor) -> Tensor {
    let (x0, y0, x1, y1) = components(boxes)
    return Tensor.stack([(x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0], dim: -1)
  }

  /// (x, y, w, h) → (x0, y0, x1, y1).
  public static func cocoToCorners(_ boxes: Tensor) -> Tensor {
    let (x, y, w, h) = components(boxes)
    return Tensor.stack([x, y, x + w, y + h], dim: -1)
  }

  /// (x0, y0, x1, y1) → (x, y, w, h).
  public static func cornersToCOCO(_ boxes: Tensor) -> Tensor {
    let (x0, y0, x1, y1) = components(boxes)
    return Tensor.stack([x0, y0, x1 - x0, y1 - y0], dim: -1)
  }

  /// Areas of corner boxes `[...]`.
  public static func area(_ boxes: Tensor) -> Tensor {
    let (x0, y0, x1, y1) = components(boxes)
    return (x1 - x0) * (y1 - y0)
  }

  /// IoU of every pair of corner boxes `[n, 4]` × `[m, 4]` → `[n, m]`, and the union areas.
  public static func pairwiseIoU(_ a: Tensor, _ b: Tensor) -> (iou: Tensor, union: Tensor) {
    let areaA = area(a)
    let areaB = area(b)
    let topLeft = a[.all, .newAxis, 0..<2].maximum(b[.newAxis, .all, 0..<2])
    let bottomRight = a[.all, .newAxis, 2..<4].minimum(b[.newAxis, .all, 2..<4])
    let size = (bottomRight - topLeft).clamped(min: 0)
    let intersection = size[.ellipsis, 0] * size[.ellipsis, 1]
    let union = areaA[.all, .newAxis] + areaB[.newAxis, .all] - intersection
    return (intersection / union, union)
  }

  /// Generalized IoU (Rezatofighi et al. 2019) of every pair of corner boxes → `[n, m]`, in [-1, 1].
  /// Degenerate boxes (x1 < x0) give meaningless values; callers check them as the reference does.
  public static func pairwiseGeneralizedIoU(_ a: Tensor, _ b: Tensor) -> Tensor {
    let (iou, union) = pairwiseIoU(a, b)
    let topLeft = a[.all, .newAxis, 0..<2].minimum(b[.newAxis, .all, 0..<2])
    let bottomRight = a[.all, .newAxis, 2..<4].maximum(b[.newAxis, .all, 2..<4])
    let size = (bottomRight - topLeft).clamped(min: 0)
    let enclosing = size[.ellipsis, 0] * size[.ellipsis, 1]
    return iou - (enclosing - union) / enclosing
  }

  /// IoU `[n]` and union areas `[n]` of corresponding corner boxes `a [n, 4]` and `b [n, 4]`.
  public static func alignedIoUAndUnion(_ a: Tensor, _ b: Tensor) -> (iou: Tensor, union: Tensor) {
    let topLeft = a[.ellipsis, 0..<2].maximum(b[.ellipsis, 0..<2])
    let bottomRight = a[.ellipsis, 2..<4].minimum(b[.ellipsis, 2..<4])
    let size = (bottomRight - topLeft).clamped(min: 0)
    let intersection = size[.ellipsis, 0] * size[.ellipsis, 1]
    let union = area(a) + area(b) - intersection
    return (intersection / union, union)
  }

  /// IoU of corresponding corner boxes `[n, 4]` and `[n, 4]` → `[n]`.
  public static func alignedIoU(_ a: Tensor, _ b: Tensor) -> Tensor { alignedIoUAndUnion(a, b).iou }

  /// Generalized IoU of corresponding corner boxes `[n, 4]` and `[n, 4]` → `[n]`, in [-1, 1].
  public static func alignedGeneralizedIoU(_ a: Tensor, _ b: Tensor) -> Tensor {
    let (iou, union) = alignedIoUAndUnion(a, b)
    let size = (a[.ellipsis, 2..<4].maximum(b[.ellipsis, 2..<4]) - a[.ellipsis, 0..<2].minimum(b[.ellipsis, 0..<2])).clamped(min: 0)
    let enclosing = size[.ellipsis, 0] * size[.ellipsis, 1]
    return iou - (enclosing - union) / enclosing
  }

  /// Greedy non-maximum suppression of corner boxes `[n, 4]` with `scores [n]`: indices kept,
  /// highest score first (equal scores in input order); a box is dropped when its IoU with a kept
  /// box exceeds `iouThreshold`.
  public static func nonMaximumSuppression(_ boxes: Tensor, scores: Tensor, iouThreshold: Double) -> Tensor {
    Functional.nonMaximumSuppression(boxes, scores: scores, iouThreshold: iouThreshold)
  }

  /// NMS within each class of `classes [n]`: boxes of different classes never suppress each other.
  public static func batchedNonMaximumSuppression(_ boxes: Tensor, scores: Tensor, classes: Tensor, iouThreshold: Double) -> Tensor {
    Functional.nonMaximumSuppression(boxes, scores: scores, classes: classes, iouThreshold: iouThreshold)
  }

  static func components(_ boxes: Tensor) -> (Tensor, Tensor, Tensor, Tensor) {
    (boxes[.ellipsis, 0], boxes[.ellipsis, 1], boxes[.ellipsis, 2], boxes[.ellipsis, 3])
  }
}
