import Torch

/// Detections of one image: boxes as (x0, y0, x1, y1) in pixels of the image size given, class indices and scores.
public struct ImageDetections: Sendable, Equatable {
  public var scores: [Float]
  public var labels: [Int]
  public var boxes: [[Double]]

  public init(scores: [Float], labels: [Int], boxes: [[Double]]) {
    self.scores = scores
    self.labels = labels
    self.boxes = boxes
  }

  /// Boxes clipped to an image of `size` and those left with no area dropped, as detectron2's
  /// `detector_postprocess` does for detrex's models.
  public func clipped(to size: (height: Int, width: Int)) -> ImageDetections {
    let (width, height) = (Double(size.width), Double(size.height))
    let clippedBoxes = boxes.map { box in
      [
        Swift.min(Swift.max(box[0], 0), width), Swift.min(Swift.max(box[1], 0), height), Swift.min(Swift.max(box[2], 0), width),
        Swift.min(Swift.max(box[3], 0), height),
      ]
    }
    let kept = clippedBoxes.indices.filter { clippedBoxes[$0][2] > clippedBoxes[$0][0] && clippedBoxes[$0][3] > clippedBoxes[$0][1] }
    return ImageDetections(scores: kept.map { scores[$0] }, labels: kept.map { labels[$0] }, boxes: kept.map { clippedBoxes[$0] })
  }

  /// The detections scoring above `threshold`, at most `limit` of them, best first.
  public func filtered(threshold: Float, limit: Int) -> ImageDetections {
    let order = scores.indices.filter { scores[$0] > threshold }.sorted { scores[$0] > scores[$1] || (scores[$0] == scores[$1] && $0 < $1) }
    let kept = order.prefix(limit)
    return ImageDetections(scores: kept.map { scores[$0] }, labels: kept.map { labels[$0] }, boxes: kept.map { boxes[$0] })
  }
}

/// How a detector's logits become scores (the reference post-processors).
public enum PostProcessing: Sendable, Equatable {
  /// DETR: softmax over classes + "no object"; each query's best real class. Every query is returned.
  case softmax
  /// Conditional and Deformable DETR: sigmoid, then the `topK` best (query, class) pairs over all queries.
  case sigmoidTopK(Int)

  /// Detections per image, boxes scaled to `imageSizes` (height, width), e.g. the original image sizes.
  /// `logits [batch, queries, classes]`, `boxes [batch, queries, 4]` normalized (cx, cy, w, h).
  public func callAsFunction(logits: Tensor, boxes: Tensor, imageSizes: [(height: Int, width: Int)]) -> [ImageDetections] {
    let (logits, boxes) = (logits.to(.float32), boxes.to(.float32))
    return withNoGrad {
      let batch = logits.size(0)
      let scale = Tensor(
        imageSizes.flatMap { [Float($0.width), Float($0.height), Float($0.width), Float($0.height)] }, shape: [batch, 1, 4]
      ).to(device: boxes.device)
      let corners = Boxes.centerToCorners(boxes) * scale
      switch self {
      case .softmax:
        let probabilities = logits.softmax(dim: -1)[.ellipsis, 0..<(logits.size(2) - 1)]
        let (scores, labels) = probabilities.max(dim: -1)
        return (0..<batch).map { image($0, scores: scores[$0], labels: labels[$0], boxes: corners[$0]) }
      case .sigmoidTopK(let k):
        let (queries, classes) = (logits.size(1), logits.size(2))
        let probabilities = logits.sigmoid().view(batch, queries * classes)
        let top = probabilities.topK(Swift.min(k, queries * classes), dim: 1)
        let queryIndex = top.indices.floorDivided(by: classes)
        let labels = top.indices.remainder(classes)
        let gathered = corners.gather(dim: 1, index: queryIndex.unsqueezed(dim: -1).expanded(to: [batch, queryIndex.size(1), 4]))
        return (0..<batch).map { image($0, scores: top.values[$0], labels: labels[$0], boxes: gathered[$0]) }
      }
    }
  }

  private func image(_ index: Int, scores: Tensor, labels: Tensor, boxes: Tensor) -> ImageDetections {
    let flat = boxes.to(.float64).contiguous().asArray(Double.self)
    return ImageDetections(
      scores: scores.asArray(Float.self), labels: labels.asArray(Int.self),
      boxes: stride(from: 0, to: flat.count, by: 4).map { Array(flat[$0..<($0 + 4)]) })
  }
}
