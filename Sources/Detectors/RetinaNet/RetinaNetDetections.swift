import Detection
import Foundation
import Torch
import TorchNN

/// RetinaNet's post-processing: per level, sigmoid scores (fused with the object confidence
/// `p^(1−α) · σ(iou)^α` under DSA's task), the level's candidates (`candidateSelection`), boxes
/// decoded and clipped to the image; then class-wise NMS over all levels and the best
/// `detectionsPerImage`.
extension RetinaNetModel {
  /// Each image's detections: boxes (x0, y0, x1, y1) in pixels of the network input, scores, labels
  /// (class indices), best first.
  /// - `imageSizes`: each image's unpadded (height, width) in the input; `paddedSize` the batch's.
  func detections(_ levels: [RetinaNetLevelOutput], paddedSize: (height: Int, width: Int), imageSizes: [(height: Int, width: Int)])
    -> [(boxes: Tensor, scores: Tensor, labels: Tensor)]
  {
    let levels = levels.map(\.inFloat32)
    let anchorsPerLevel = anchors(for: levels, paddedSize: paddedSize)
    let classes = config.classCount
    return imageSizes.enumerated().map { image, size in
      var boxes: [Tensor] = []
      var scores: [Tensor] = []
      var labels: [Tensor] = []
      for (index, level) in levels.enumerated() {
        var levelScores = RetinaNetLevelOutput.flatten(level.logits[image..<(image + 1)], width: classes)[0].sigmoid()
        var levelAnchors = anchorsPerLevel[index]
        var deltas = RetinaNetLevelOutput.flatten(level.deltas[image..<(image + 1)], width: 4)[0]
        let count = levelScores.size(0)
        if let confidence = level.confidence {
          let alpha = config.confidenceExponent
          levelScores = levelScores.pow(1 - alpha)
          if !config.legacyScoreFusion || count > config.candidatesPerLevel {
            let iou = RetinaNetLevelOutput.flatten(confidence[image..<(image + 1)], width: 1)[0].sigmoid().pow(alpha)
            levelScores = levelScores * iou
          }
        }
        switch config.candidateSelection {
        case .anchors:
          if count > config.candidatesPerLevel {
            let best = levelScores.max(dims: [1]).topK(config.candidatesPerLevel).indices
            (levelAnchors, deltas, levelScores) = (
              levelAnchors.indexSelect(dim: 0, index: best), deltas.indexSelect(dim: 0, index: best),
              levelScores.indexSelect(dim: 0, index: best)
            )
          }
          let decoded = config.boxCoder.decode(deltas, anchors: levelAnchors, clipTo: size)
          let kept = (levelScores .> config.scoreThreshold).nonzero()  // (anchor, class), anchor-major
          let anchorIndex = kept[.all, 0]
          boxes.append(decoded.indexSelect(dim: 0, index: anchorIndex))
          scores.append(levelScores[anchorIndex, kept[.all, 1]])
          labels.append(kept[.all, 1])
        case .pairs:
          let flat = levelScores.reshaped(-1)
          let above = (flat .> config.scoreThreshold).nonzero().squeezed(dim: 1)
          let best = flat.indexSelect(dim: 0, index: above).topK(Swift.min(config.candidatesPerLevel, above.size(0)))
          let pairs = above.indexSelect(dim: 0, index: best.indices)
          let anchorIndex = pairs.floorDivided(by: classes)
          boxes.append(
            config.boxCoder.decode(
              deltas.indexSelect(dim: 0, index: anchorIndex), anchors: levelAnchors.indexSelect(dim: 0, index: anchorIndex), clipTo: size))
          scores.append(best.values)
          labels.append(pairs - anchorIndex * classes)
        }
      }
      let (allBoxes, allScores, allLabels) = (Tensor.cat(boxes, dim: 0), Tensor.cat(scores, dim: 0), Tensor.cat(labels, dim: 0))
      let keep = Boxes.batchedNonMaximumSuppression(allBoxes, scores: allScores, classes: allLabels, iouThreshold: config.nmsThreshold)
      let top = keep[0..<Swift.min(keep.size(0), config.detectionsPerImage)]
      return (allBoxes.indexSelect(dim: 0, index: top), allScores.indexSelect(dim: 0, index: top), allLabels.indexSelect(dim: 0, index: top))
    }
  }
}

extension RetinaNetModel: StagedDetector {
  public func encodedConfig() throws -> Data { try JSONEncoder().encode(config) }

  /// mmdet's recipe has no backbone rate of its own; the trainer's freezing rules apply.
  public var parameterRules: [ParameterRule] { [] }

  /// torchvision and mmdet pad every batch to a multiple of 32 (in torchvision's convention the
  /// strides are the padded size over the feature size, so this changes the boxes).
  public var inputSizeDivisor: Int { 32 }

  public func losses(for batch: DetectorBatch) throws -> TrainingLosses {
    let levels = self(images: batch.images)
    let perLevel = levelLosses(
      levels, paddedSize: (batch.images.size(2), batch.images.size(3)), imageSizes: batch.imageSizes, targets: batch.targets)
    let names = ["loss_cls", "loss_bbox"] + (config.objectConfidence ? ["loss_iou"] : [])
    let zero = Tensor.zeros([], device: batch.images.device)
    let terms = names.map { name in
      TrainingLosses.Term(name: name, value: perLevel.map { $0[name]! }.reduce(zero, +), weight: 1)
    }
    return TrainingLosses(terms: terms, total: terms.map(\.value).reduce(zero, +))
  }

  public func detect(_ batch: DetectorBatch) -> [ImageDetections] { detect(batch) { _ in } }

  public func detect(_ batch: DetectorBatch, lap: (String) -> Void) -> [ImageDetections] {
    let features = pyramid(batch.images)
    lap("backbone and neck")
    let levels = headOutputs(features)
    lap("head")
    let found = detections(levels, paddedSize: (batch.images.size(2), batch.images.size(3)), imageSizes: batch.imageSizes)
    lap("post-processing")
    return zip(found, zip(batch.imageSizes, batch.outputSizes)).map { found, sizes in
      let (input, output) = sizes
      let scale = [Double(output.width) / Double(input.width), Double(output.height) / Double(input.height)]
      let corners = found.boxes.to(.float64).contiguous().asArray(Double.self)
      let boxes = (0..<found.scores.size(0)).map { row in (0..<4).map { corners[4 * row + $0] * scale[$0 % 2] } }
      return ImageDetections(scores: found.scores.asArray(Float.self), labels: found.labels.asArray(Int64.self).map { Int($0) }, boxes: boxes)
    }
  }
}
