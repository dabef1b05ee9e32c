import Torch

/// The targets and loss of Focus-DETR's foreground scores (FCOS-style scale assignment, Tian et
/// al. 2019, as the official code does it): a token is foreground when its cell centre
/// (`j · stride + stride / 2` in integer pixels, x and y) lies strictly inside a ground-truth box
/// whose largest centre-to-side distance falls in the token's level range `(lower, upper]`. No
/// centre sampling. The loss is the sigmoid focal loss summed over every token of an image (padding
/// included, with target 0), divided by the image's foreground count (at least 1), averaged over images.
public struct ForegroundSupervision: Sendable, Equatable {
  /// Per level: the stride in input pixels and the range of box sizes it answers for.
  public var strides: [Int]
  public var ranges: [ClosedRange<Double>]
  public var alpha = 0.25
  public var gamma = 2.0

  public init(strides: [Int], ranges: [ClosedRange<Double>]) {
    precondition(strides.count == ranges.count, "ForegroundSupervision: one range per stride")
    self.strides = strides
    self.ranges = ranges
  }

  /// `[batch, tokens]` float targets (1 foreground, 0 not) for the levels' shapes. `targets`: boxes
  /// (cx, cy, w, h) normalized to each image's unpadded `imageSizes`.
  public func targets(levels: FeatureLevels, targets: [MatchTarget], imageSizes: [(height: Int, width: Int)]) -> Tensor {
    precondition(levels.count == strides.count, "ForegroundSupervision: \(levels.count) levels for \(strides.count) strides")
    var perImage: [Tensor] = []
    for (target, size) in zip(targets, imageSizes) {
      let device = target.boxes.device
      let scale = Tensor([Float(size.width), Float(size.height), Float(size.width), Float(size.height)]).to(device: device)
      let boxes = Boxes.centerToCorners(target.boxes.to(.float32) * scale)  // [m, 4] pixels
      var perLevel: [Tensor] = []
      for (level, shape) in levels.shapes.enumerated() {
        let stride = strides[level]
        let xs = (Tensor.arange(shape.width, device: device).to(.float32) * Double(stride) + Double(stride / 2)).view(1, shape.width)
          .expanded(to: [shape.height, shape.width]).reshaped(-1, 1)
        let ys = (Tensor.arange(shape.height, device: device).to(.float32) * Double(stride) + Double(stride / 2)).view(shape.height, 1)
          .expanded(to: [shape.height, shape.width]).reshaped(-1, 1)
        guard boxes.size(0) > 0 else {
          perLevel.append(Tensor.zeros([shape.height * shape.width], device: device))
          continue
        }
        let distances = Tensor.stack(
          [
            xs - boxes[.all, 0].view(1, -1), ys - boxes[.all, 1].view(1, -1), boxes[.all, 2].view(1, -1) - xs,
            boxes[.all, 3].view(1, -1) - ys,
          ],
          dim: -1)  // [cells, m, 4]
        let inside = distances.min(dims: [-1]) .> 0
        let largest = distances.max(dims: [-1])
        let inRange = (largest .> ranges[level].lowerBound) .& (largest .<= ranges[level].upperBound)
        perLevel.append((inside .& inRange).any(dims: [1]).to(.float32))
      }
      perImage.append(Tensor.cat(perLevel, dim: 0))
    }
    return Tensor.stack(perImage, dim: 0)
  }

  /// The loss of `logits [batch, tokens]` against `targets [batch, tokens]`.
  public func loss(logits: Tensor, targets: Tensor) -> Tensor {
    let logits = logits.to(.float32)
    let perToken = sigmoidFocalLoss(logits, targets: targets, alpha: alpha, gamma: gamma)
    let positives = targets.sum(dims: [1]).clamped(min: 1)
    return (perToken.sum(dims: [1]) / positives).mean()
  }
}
