import Torch

/// An IoU-aware classification loss for set prediction, SD-DETR's "task alignment learning" (Zhang
/// et al., ICCV 2023) as swift-detr reconstructs it: a matched query's target for its class is the
/// soft value `t = max(s^α · u^β, minimumTarget)`, with `s` the query's (detached) probability of
/// that class and `u` the (detached) IoU of its box with the target's; every other (query, class)
/// entry has target 0. The binary cross-entropy of each entry is weighted by `|t − p|^γ` on the
/// matched entries (TOOD's and the quality focal loss's form) or 1 (Align-DETR's IA-BCE), and by
/// `p^γ` elsewhere, summed and divided by the batch's number of boxes.
public struct AlignmentLoss: Sendable, Equatable, Codable {
  /// How matched entries are weighted.
  public enum PositiveWeighting: String, Sendable, Equatable, Codable {
    /// `|t − p|^γ` (TOOD, quality focal loss).
    case qualityFocal = "quality-focal"
    /// 1 (Align-DETR's IA-BCE).
    case none
  }

  /// `α`, the exponent of the probability in the target (0.25 in the paper).
  public var scoreExponent = 0.25
  /// `β`, the exponent of the IoU in the target (0.75).
  public var iouExponent = 0.75
  /// `γ`, the focusing exponent (2).
  public var gamma = 2.0
  /// The smallest target of a matched entry (0.01, as Align-DETR).
  public var minimumTarget = 0.01
  public var positiveWeighting = PositiveWeighting.qualityFocal

  public init(positiveWeighting: PositiveWeighting = .qualityFocal) { self.positiveWeighting = positiveWeighting }

  /// The soft targets `[batch, queries, classes]`: `t` at each matched (image, query, label), else 0.
  /// - `logits [batch, queries, classes]`, `boxes [batch, queries, 4]` (cx, cy, w, h); the matched
  ///   entries as index tensors `[matches]` with their target boxes `[matches, 4]` (cx, cy, w, h).
  public func targets(logits: Tensor, boxes: Tensor, batchIndex: Tensor, queryIndex: Tensor, labels: Tensor, targetBoxes: Tensor)
    -> Tensor
  {
    let soft = Tensor.zeros(logits.shape, device: logits.device)
    guard labels.size(0) > 0 else { return soft }
    let probability = logits.detached()[batchIndex, queryIndex, labels].sigmoid()
    let predicted = Boxes.centerToCorners(boxes.detached()[batchIndex, queryIndex])
    let iou = Boxes.alignedIoU(predicted, Boxes.centerToCorners(targetBoxes))
    soft[batchIndex, queryIndex, labels] = (probability.pow(scoreExponent) * iou.pow(iouExponent)).clamped(min: minimumTarget)
    return soft
  }

  /// The element-wise loss `[batch, queries, classes]` for `targets` from `targets(...)` and the
  /// mask of matched entries `positive` (same shape, 1 on matches).
  public func elementwise(_ logits: Tensor, targets: Tensor, positive: Tensor) -> Tensor {
    let probability = logits.sigmoid()
    let crossEntropy = Functional.binaryCrossEntropyWithLogits(logits, targets: targets, reduction: .none)
    let negativeWeight = probability.pow(gamma) * (1 - positive)
    let positiveWeight: Tensor =
      switch positiveWeighting {
      case .qualityFocal: (targets - probability).abs().pow(gamma) * positive
      case .none: positive
      }
    return crossEntropy * (positiveWeight + negativeWeight)
  }
}
