import Torch

/// The ground truth of one image for matching and losses.
public struct MatchTarget: @unchecked Sendable {
  /// `[n]` int64 class indices.
  public var labels: Tensor
  /// `[n, 4]` (cx, cy, w, h) normalized to the unpadded image.
  public var boxes: Tensor

  public init(labels: Tensor, boxes: Tensor) {
    self.labels = labels
    self.boxes = boxes
  }
}

/// How the classification term of the matching cost is computed.
public enum ClassificationCost: Sendable, Equatable {
  /// DETR: −softmax(logits)[label], the softmax over all classes including "no object".
  case softmax
  /// Conditional and Deformable DETR: the focal-loss difference
  /// α(1−p)^γ(−log(p+1e-8)) − (1−α)p^γ(−log(1−p+1e-8)) at the label, with p = sigmoid(logit).
  case focal(alpha: Double, gamma: Double)
}

/// Optimal one-to-one assignment of predictions to ground-truth boxes (Carion et al. 2020):
/// cost = classWeight · class cost + boxWeight · L1(boxes) + giouWeight · (−GIoU), solved exactly per image.
public struct HungarianMatcher: Sendable {
  public var classWeight: Double
  public var boxWeight: Double
  public var giouWeight: Double
  public var classificationCost: ClassificationCost

  public init(classWeight: Double, boxWeight: Double, giouWeight: Double, classificationCost: ClassificationCost) {
    precondition(classWeight != 0 || boxWeight != 0 || giouWeight != 0, "all matching costs are zero")
    self.classWeight = classWeight
    self.boxWeight = boxWeight
    self.giouWeight = giouWeight
    self.classificationCost = classificationCost
  }

  /// One (query indices, target indices) pair per image, sorted by query index.
  ///
  /// - `logits`: `[batch, queries, classes]` (classes includes "no object" for the softmax cost).
  /// - `boxes`: `[batch, queries, 4]` normalized (cx, cy, w, h).
  public func match(logits: Tensor, boxes: Tensor, targets: [MatchTarget]) throws -> [(queries: [Int], targets: [Int])] {
    precondition(logits.size(0) == targets.count, "HungarianMatcher: \(logits.size(0)) images of predictions, \(targets.count) of targets")
    let costs = withNoGrad { costMatrices(logits: logits, boxes: boxes, targets: targets) }
    let queries = logits.size(1)
    return try costs.map { cost in
      let columns = cost.elementCount / Swift.max(queries, 1)
      if columns == 0 { return ([], []) }
      let pairs = try LinearAssignment.solve(cost: cost.to(.float64).contiguous().asArray(Double.self), rows: queries, columns: columns)
      return (pairs.map(\.row), pairs.map(\.column))
    }
  }

  /// The cost matrix of each image, `[queries, n_i]`, computed for the whole batch at once.
  public func costMatrices(logits: Tensor, boxes: Tensor, targets: [MatchTarget]) -> [Tensor] {
    let (batch, queries) = (logits.size(0), logits.size(1))
    let sizes = targets.map { $0.labels.size(0) }
    let total = sizes.reduce(0, +)
    guard total > 0 else { return sizes.map { _ in Tensor.zeros([queries, 0], device: logits.device) } }
    let flatLogits = logits.flattened(from: 0, to: 1)
    let flatBoxes = boxes.flattened(from: 0, to: 1)
    let labels = Tensor.cat(targets.map(\.labels))
    let targetBoxes = Tensor.cat(targets.map(\.boxes))

    let classCost: Tensor
    switch classificationCost {
    case .softmax:
      classCost = -flatLogits.softmax(dim: -1).indexSelect(dim: 1, index: labels)
    case .focal(let alpha, let gamma):
      let p = flatLogits.sigmoid()
      let negative = (1 - alpha) * p.pow(gamma) * -((1 - p + 1e-8).log())
      let positive = alpha * (1 - p).pow(gamma) * -((p + 1e-8).log())
      classCost = positive.indexSelect(dim: 1, index: labels) - negative.indexSelect(dim: 1, index: labels)
    }
    let l1 = (flatBoxes.unsqueezed(dim: 1) - targetBoxes.unsqueezed(dim: 0)).abs().sum(dim: -1)
    let giou = -Boxes.pairwiseGeneralizedIoU(Boxes.centerToCorners(flatBoxes), Boxes.centerToCorners(targetBoxes))
    let cost = (l1 * boxWeight + classCost * classWeight + giou * giouWeight).view(batch, queries, total)
    return cost.split(sizes: sizes, dim: -1).enumerated().map { $1[$0] }
  }
}
