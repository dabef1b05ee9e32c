import Torch

/// RetinaNet's anchor assignment: an anchor whose best IoU with a ground-truth box is at least
/// `positiveThreshold` is that box's; below `negativeThreshold` it is background; in between it is
/// ignored. Low-quality matches: every anchor whose IoU with a box equals that box's best IoU is made
/// positive too, so that every box has an anchor.
public struct MaxIoUAssigner: Sendable, Equatable, Codable {
  /// Which box a low-quality match is given.
  public enum LowQualityMatch: String, Sendable, Equatable, Codable {
    /// The box it is the best anchor of, boxes taken in order (a later box wins): mmdet's `gt_max_assign_all`.
    case boxInOrder = "box-in-order"
    /// The anchor's own best box: torchvision's and detectron2's `allow_low_quality_matches`.
    case anchorsBestBox = "anchors-best-box"
  }

  /// The value of an ignored anchor in `assign`'s result.
  public static let ignored = -2
  /// The value of a background anchor.
  public static let background = -1

  public var positiveThreshold = 0.5
  public var negativeThreshold = 0.4
  public var lowQualityMatch: LowQualityMatch

  public init(lowQualityMatch: LowQualityMatch) { self.lowQualityMatch = lowQualityMatch }

  enum CodingKeys: String, CodingKey {
    case positiveThreshold = "positive_threshold"
    case negativeThreshold = "negative_threshold"
    case lowQualityMatch = "low_quality_match"
  }

  /// Each anchor's box index, `background` or `ignored`: `[n]` int64.
  /// - `anchors [n, 4]`, `boxes [g, 4]` corner boxes; `valid [n]` bool: anchors to assign (the rest are ignored).
  public func assign(anchors: Tensor, boxes: Tensor, valid: Tensor) -> Tensor {
    let count = anchors.size(0)
    let device = anchors.device
    func filled(_ value: Int) -> Tensor { Tensor.full([count], value, dtype: .int64, device: device) }
    guard boxes.size(0) > 0 else { return Tensor.where(valid, filled(Self.background), filled(Self.ignored)) }
    // Invalid anchors overlap nothing (−1), so they are neither any box's best nor background.
    let overlaps = Boxes.pairwiseIoU(boxes, anchors).iou.filling(where: valid.logicalNot().unsqueezed(dim: 0), with: -1.0)
    let (best, bestBox) = overlaps.max(dim: 0)
    var assigned = filled(Self.ignored)
    assigned = Tensor.where((best .>= 0) .& (best .< negativeThreshold), filled(Self.background), assigned)
    assigned = Tensor.where(best .>= positiveThreshold, bestBox, assigned)
    let boxesBest = overlaps.max(dims: [1], keepDims: true)
    let isBoxesBest = (overlaps .== boxesBest) .& (boxesBest .>= 0)
    switch lowQualityMatch {
    case .anchorsBestBox:
      assigned = Tensor.where(isBoxesBest.any(dims: [0]), bestBox, assigned)
    case .boxInOrder:
      for box in 0..<boxes.size(0) {
        assigned = Tensor.where(isBoxesBest[box], filled(box), assigned)
      }
    }
    return assigned
  }
}
