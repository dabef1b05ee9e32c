import Detection
import Foundation
import Torch
import TorchNN

/// RetinaNet's training loss on a batch: anchors assigned to boxes over all levels at once, sigmoid
/// focal loss on every assigned anchor (positives and background; ignored ones and anchors in the
/// padding excluded), the box loss and DSA's object-confidence loss on positives.
extension RetinaNetModel {
  /// Each level's unweighted terms (`loss_cls`, `loss_bbox`, and `loss_iou` with the
  /// object-confidence task), already normalized; the training loss is their sum over levels.
  /// - `paddedSize`: the batch's (height, width); `imageSizes`: each image's unpadded (height, width) in pixels; `targets`: labels and
  ///   normalized (cx, cy, w, h) boxes of the unpadded image.
  func levelLosses(
    _ levels: [RetinaNetLevelOutput], paddedSize: (height: Int, width: Int), imageSizes: [(height: Int, width: Int)], targets: [MatchTarget]
  ) -> [[String: Tensor]] {
    let levels = levels.map(\.inFloat32)
    let batch = levels[0].logits.size(0)
    let anchorsPerLevel = anchors(for: levels, paddedSize: paddedSize)
    let counts = anchorsPerLevel.map { $0.size(0) }
    let anchors = Tensor.cat(anchorsPerLevel, dim: 0)
    let classes = config.classCount
    let device = anchors.device

    // Targets per image: assignment, one-hot classes, box deltas.
    var assignments: [Tensor] = []
    var classTargets: [Tensor] = []
    var deltaTargets: [Tensor] = []
    var normalizers: [Double] = []
    for image in 0..<batch {
      let size = imageSizes[image]
      let valid = Tensor.cat(
        levels.indices.map { level in
          config.anchors.validFlags(
            level: level, featureSize: (levels[level].logits.size(2), levels[level].logits.size(3)), imageSize: size,
            device: levels[level].logits.device)
        }, dim: 0)
      let boxes = Self.pixelCorners(targets[image].boxes, size: size)
      let assigned = config.assigner.assign(anchors: anchors, boxes: boxes, valid: valid)
      let positive = assigned .>= 0
      let boxIndex = Tensor.where(positive, assigned, Tensor.zeros([anchors.size(0)], dtype: .int64, device: device))
      let labels = targets[image].labels.size(0) > 0
        ? targets[image].labels.indexSelect(dim: 0, index: boxIndex) : Tensor.zeros([anchors.size(0)], dtype: .int64, device: device)
      let oneHot = Tensor.zeros([anchors.size(0), classes], device: device)
      if targets[image].labels.size(0) > 0 {
        let positions = positive.nonzero().squeezed(dim: 1)
        oneHot[positions, labels.indexSelect(dim: 0, index: positions)] = Tensor.ones([positions.size(0)], device: device)
        deltaTargets.append(config.boxCoder.encode(boxes.indexSelect(dim: 0, index: boxIndex), anchors: anchors))
      } else {
        deltaTargets.append(Tensor.zeros([anchors.size(0), 4], device: device))
      }
      assignments.append(assigned)
      classTargets.append(oneHot)
      normalizers.append(Swift.max(1, Double(positive.to(.int64).sum().item(Int.self))))
    }
    let assigned = Tensor.stack(assignments, dim: 0)  // [B, N]
    let positive = (assigned .>= 0).to(.float32)
    let weighted = (assigned .>= MaxIoUAssigner.background).to(.float32)  // positives and background
    // Per image: 1 / its normalizer (torchvision, then averaged over images) or 1 / the batch's sum (mmdet).
    let scale: Tensor
    switch config.lossNormalization {
    case .batch: scale = Tensor.full([batch, 1], 1 / normalizers.reduce(0, +), device: device)
    case .perImage: scale = Tensor(normalizers.map { Float(1 / ($0 * Double(batch))) }, shape: [batch, 1]).to(device: device)
    case .movingAverage:
      let positives = Swift.max(1, Double(positive.sum().item(Double.self)))
      if isTraining, let lossNormalizer {
        withNoGrad { lossNormalizer.copy(from: lossNormalizer * 0.9 + 0.1 * positives) }
      }
      scale = Tensor.full([batch, 1], 1 / (lossNormalizer?.item(Double.self) ?? positives), device: device)
    }
    let classTarget = Tensor.stack(classTargets, dim: 0)
    let deltaTarget = Tensor.stack(deltaTargets, dim: 0)

    var results: [[String: Tensor]] = []
    var start = 0
    for (index, level) in levels.enumerated() {
      let range = start..<(start + counts[index])
      start += counts[index]
      let logits = RetinaNetLevelOutput.flatten(level.logits, width: classes)
      let deltas = RetinaNetLevelOutput.flatten(level.deltas, width: 4)
      let (levelPositive, levelWeight) = (positive[.all, range], weighted[.all, range])
      let focal = sigmoidFocalLoss(logits, targets: classTarget[.all, range], alpha: config.focalAlpha, gamma: config.focalGamma)
      var terms = ["loss_cls": ((focal.sum(dim: 2) * levelWeight) * scale).sum()]
      let targetDeltas = deltaTarget[.all, range]
      // Decoded boxes `[batch · anchors, 4]`, once, when the GIoU loss or the confidence task needs them.
      var decoded: (predicted: Tensor, target: Tensor)?
      if config.boxLoss == .generalizedIoU || level.confidence != nil {
        let levelAnchors = anchors[range].unsqueezed(dim: 0).expanded(to: [batch, -1, 4])
        decoded = (
          config.boxCoder.decode(deltas, anchors: levelAnchors).reshaped(-1, 4),
          config.boxCoder.decode(targetDeltas, anchors: levelAnchors).reshaped(-1, 4)
        )
      }
      switch config.boxLoss {
      case .l1:
        terms["loss_bbox"] = (((deltas - targetDeltas).abs().sum(dim: 2) * levelPositive) * scale).sum()
      case .generalizedIoU:
        let giou = Boxes.alignedGeneralizedIoU(decoded!.predicted, decoded!.target).view(batch, -1)
        terms["loss_bbox"] = (((1 - giou) * levelPositive) * scale).sum()
      }
      if let confidence = level.confidence, let (predicted, target) = decoded {
        let iouLogits = RetinaNetLevelOutput.flatten(confidence, width: 1).squeezed(dim: 2)
        let boxes = config.gradientThroughIoUTarget ? predicted : predicted.detached()
        let iou = Boxes.alignedIoU(boxes, target).view(batch, -1) * levelPositive
        let crossEntropy = Functional.binaryCrossEntropyWithLogits(iouLogits, targets: iou, reduction: .none)
        terms["loss_iou"] = ((crossEntropy * levelPositive) * scale).sum()
      }
      results.append(terms)
    }
    return results
  }

  /// Normalized (cx, cy, w, h) boxes `[g, 4]` as corner boxes in pixels of an image of `size`.
  static func pixelCorners(_ boxes: Tensor, size: (height: Int, width: Int)) -> Tensor {
    let scale = Tensor([Float(size.width), Float(size.height), Float(size.width), Float(size.height)], shape: [4]).to(device: boxes.device)
    return Boxes.centerToCorners(boxes) * scale
  }
}
