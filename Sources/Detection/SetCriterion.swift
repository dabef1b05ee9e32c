import Torch

/// A decoder layer's predictions: `logits [batch, queries, classes]` and `boxes [batch, queries, 4]`
/// as normalized (cx, cy, w, h).
public struct LayerPredictions: @unchecked Sendable {
  public var logits: Tensor
  public var boxes: Tensor

  public init(logits: Tensor, boxes: Tensor) {
    self.logits = logits
    self.boxes = boxes
  }

  /// The predictions in float32 (under mixed precision the heads hand over bfloat16): losses, matching
  /// costs and post-processing run in float32.
  public var inFloat32: LayerPredictions { LayerPredictions(logits: logits.to(.float32), boxes: boxes.to(.float32)) }
}

/// The loss terms of one set of predictions (already divided by the number of boxes where the
/// reference does), unweighted.
public struct LossTerms: @unchecked Sendable {
  public var classification: Tensor
  public var boxL1: Tensor
  public var generalizedIoU: Tensor

  public init(classification: Tensor, boxL1: Tensor, generalizedIoU: Tensor) {
    self.classification = classification
    self.boxL1 = boxL1
    self.generalizedIoU = generalizedIoU
  }
}

/// Everything a criterion computed: the weighted total to back-propagate and each term by name,
/// named as the reference logs them (`loss_ce`, `loss_bbox`, `loss_giou`, with `_0`, `_1`, ... for
/// auxiliary layers and `_enc` for two-stage proposals).
public struct SetLoss: @unchecked Sendable {
  public var total: Tensor
  /// Each term, unweighted, with its weight.
  public var terms: [TrainingLosses.Term]
  /// The matches of the final layer.
  public var matches: [(queries: [Int], targets: [Int])]
  /// The normalizer: total ground-truth boxes in the batch, at least 1.
  public var boxCount: Double

  /// The terms and total as a detector reports them to the trainer.
  public var trainingLosses: TrainingLosses { TrainingLosses(terms: terms, total: total) }
}

/// DETR's set-prediction loss (Carion et al. 2020), with the focal classification of Deformable
/// DETR (Zhu et al. 2021) as an option: match, then classification + L1 + GIoU on the matches, for
/// the final layer and each auxiliary layer with the same weights.
public struct SetCriterion: Sendable {
  public enum Classification: Sendable, Equatable {
    /// Softmax cross-entropy over classes + "no object" (the last index), whose weight is `noObjectWeight`.
    case crossEntropy(noObjectWeight: Double)
    /// Sigmoid focal loss over classes, summed and divided by the number of boxes.
    case focal(alpha: Double, gamma: Double)
    /// SD-DETR's IoU-aware soft targets (see `AlignmentLoss`), divided by the number of boxes.
    case alignment(AlignmentLoss)
  }

  public var matcher: HungarianMatcher
  public var classification: Classification
  public var classWeight: Double
  public var boxWeight: Double
  public var giouWeight: Double
  /// Whether two-stage proposals are matched and classified as one class (Deformable DETR) or with
  /// the targets' classes (DINO's `two_stage_binary_cls=False`).
  public var classAgnosticProposals = true
  /// The classification term's name: `loss_ce` (DETR, Deformable DETR) or `loss_class` (detrex).
  public var classificationTermName = "loss_ce"

  public init(matcher: HungarianMatcher, classification: Classification, classWeight: Double, boxWeight: Double, giouWeight: Double) {
    self.matcher = matcher
    self.classification = classification
    self.classWeight = classWeight
    self.boxWeight = boxWeight
    self.giouWeight = giouWeight
  }

  /// The named, weighted terms of one layer: classification, L1 and GIoU with `suffix` appended.
  public func weightedTerms(_ layer: LossTerms, suffix: String) -> [TrainingLosses.Term] {
    [
      .init(name: classificationTermName + suffix, value: layer.classification, weight: classWeight),
      .init(name: "loss_bbox\(suffix)", value: layer.boxL1, weight: boxWeight),
      .init(name: "loss_giou\(suffix)", value: layer.generalizedIoU, weight: giouWeight),
    ]
  }

  /// Total ground-truth boxes of a batch, at least 1: the references' loss normalizer. In a
  /// data-parallel run (`ProcessGroup.current`), the average over the ranks of their batches' boxes, as
  /// DETR's criterion does, so that the averaged gradient is the one of the whole global batch.
  public static func boxCount(_ targets: [MatchTarget]) throws -> Double {
    var count = Double(targets.reduce(0) { $0 + $1.labels.size(0) })
    if let group = ProcessGroup.current, group.worldSize > 1 {
      count = try group.allReduce(count) / Double(group.worldSize)
    }
    return Swift.max(1, count)
  }

  /// The loss of the final predictions and of each auxiliary layer's (and two-stage proposals').
  public func callAsFunction(
    _ final: LayerPredictions, auxiliary: [LayerPredictions] = [], encoder: LayerPredictions? = nil, targets: [MatchTarget]
  ) throws -> SetLoss {
    let boxCount = try Self.boxCount(targets)
    var named: [(String, LayerPredictions)] = [("", final.inFloat32)]
    named += auxiliary.enumerated().map { ("_\($0.offset)", $0.element.inFloat32) }
    if let encoder { named.append(("_enc", encoder.inFloat32)) }
    var terms: [TrainingLosses.Term] = []
    var total: Tensor?
    var finalMatches: [(queries: [Int], targets: [Int])] = []
    for (suffix, predictions) in named {
      // Two-stage proposals are class-agnostic: every target counts as class 0.
      let layerTargets =
        suffix == "_enc" && classAgnosticProposals ? targets.map { MatchTarget(labels: $0.labels.zerosLike(), boxes: $0.boxes) } : targets
      let matches = try matcher.match(logits: predictions.logits, boxes: predictions.boxes, targets: layerTargets)
      if suffix.isEmpty { finalMatches = matches }
      let layer = losses(predictions, targets: layerTargets, matches: matches, boxCount: boxCount)
      terms += weightedTerms(layer, suffix: suffix)
      let weighted = layer.classification * classWeight + layer.boxL1 * boxWeight + layer.generalizedIoU * giouWeight
      total = total.map { $0 + weighted } ?? weighted
    }
    return SetLoss(total: total!, terms: terms, matches: finalMatches, boxCount: boxCount)
  }

  /// The unweighted terms of one layer given its matches.
  public func losses(_ predictions: LayerPredictions, targets: [MatchTarget], matches: [(queries: [Int], targets: [Int])], boxCount: Double)
    -> LossTerms
  {
    let predictions = predictions.inFloat32
    let (batch, queries, classes) = (predictions.logits.size(0), predictions.logits.size(1), predictions.logits.size(2))
    let device = predictions.logits.device
    var batchIndices: [Int] = []
    var queryIndices: [Int] = []
    var matchedLabels: [Tensor] = []
    var matchedBoxes: [Tensor] = []
    for (image, match) in matches.enumerated() {
      batchIndices += Array(repeating: image, count: match.queries.count)
      queryIndices += match.queries
      let order = Tensor(match.targets, shape: [match.targets.count]).to(device: targets[image].labels.device)
      matchedLabels.append(targets[image].labels.indexSelect(dim: 0, index: order))
      matchedBoxes.append(targets[image].boxes.indexSelect(dim: 0, index: order))
    }
    let batchIndex = Tensor(batchIndices, shape: [batchIndices.count]).to(device: device)
    let queryIndex = Tensor(queryIndices, shape: [queryIndices.count]).to(device: device)
    let labels = Tensor.cat(matchedLabels)

    let classificationLoss: Tensor
    switch classification {
    case .crossEntropy(let noObjectWeight):
      let noObject = classes - 1
      let targetClasses = Tensor.full([batch, queries], noObject, dtype: .int64, device: device)
      targetClasses[batchIndex, queryIndex] = labels
      var weights = [Float](repeating: 1, count: classes)
      weights[noObject] = Float(noObjectWeight)
      classificationLoss = Functional.crossEntropy(
        predictions.logits.transposed(1, 2), targets: targetClasses, classWeights: Tensor(weights, shape: [classes]).to(device: device))
    case .focal(let alpha, let gamma):
      let oneHot = Tensor.zeros([batch, queries, classes], device: device)
      oneHot[batchIndex, queryIndex, labels] = Tensor.ones([labels.size(0)], device: device)
      classificationLoss = sigmoidFocalLoss(predictions.logits, targets: oneHot, alpha: alpha, gamma: gamma).sum() / boxCount
    case .alignment(let alignment):
      let positive = Tensor.zeros([batch, queries, classes], device: device)
      positive[batchIndex, queryIndex, labels] = Tensor.ones([labels.size(0)], device: device)
      let soft = alignment.targets(
        logits: predictions.logits, boxes: predictions.boxes, batchIndex: batchIndex, queryIndex: queryIndex, labels: labels,
        targetBoxes: Tensor.cat(matchedBoxes))
      classificationLoss = alignment.elementwise(predictions.logits, targets: soft, positive: positive).sum() / boxCount
    }

    let predicted = predictions.boxes[batchIndex, queryIndex]
    let target = Tensor.cat(matchedBoxes)
    let l1 = Functional.l1Loss(predicted, targets: target, reduction: .sum) / boxCount
    let giou: Tensor
    if predicted.size(0) == 0 {
      giou = predicted.sum()
    } else {
      let pairwise = Boxes.pairwiseGeneralizedIoU(Boxes.centerToCorners(predicted), Boxes.centerToCorners(target))
      let diagonal = pairwise.gather(dim: 1, index: Tensor.arange(predicted.size(0), device: device).unsqueezed(dim: 1)).squeezed(dim: 1)
      giou = (1 - diagonal).sum() / boxCount
    }
    return LossTerms(classification: classificationLoss, boxL1: l1, generalizedIoU: giou)
  }
}

/// The sigmoid focal loss of Lin et al. (2017), element-wise: α_t (1 − p_t)^γ · BCE(logits, targets).
public func sigmoidFocalLoss(_ logits: Tensor, targets: Tensor, alpha: Double = 0.25, gamma: Double = 2) -> Tensor {
  let probability = logits.sigmoid()
  let crossEntropy = Functional.binaryCrossEntropyWithLogits(logits, targets: targets, reduction: .none)
  let pt = probability * targets + (1 - probability) * (1 - targets)
  var loss = crossEntropy * (1 - pt).pow(gamma)
  if alpha >= 0 {
    loss = (targets * alpha + (1 - targets) * (1 - alpha)) * loss
  }
  return loss
}

/// A detector's predictions: the final decoder layer's, each earlier layer's (for auxiliary losses)
/// and, for two-stage models, the encoder's proposals.
public struct DetectorOutput: @unchecked Sendable {
  public var final: LayerPredictions
  public var auxiliary: [LayerPredictions]
  public var encoder: LayerPredictions?

  public init(final: LayerPredictions, auxiliary: [LayerPredictions], encoder: LayerPredictions? = nil) {
    self.final = final
    self.auxiliary = auxiliary
    self.encoder = encoder
  }

  /// The last element of `layers` as final, the others as auxiliary.
  public init(layers: [LayerPredictions], encoder: LayerPredictions? = nil) {
    self.init(final: layers.last!, auxiliary: Array(layers.dropLast()), encoder: encoder)
  }
}
