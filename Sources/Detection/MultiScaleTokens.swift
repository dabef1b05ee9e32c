import Foundation
import Torch

/// Multi-scale feature maps flattened into one token sequence, as the deformable encoders take them
/// (Deformable DETR, DINO): tokens, their position encodings (plus a learned embedding per level),
/// the padding mask, the levels' shapes and each image's valid fraction of every level.
public struct MultiScaleTokens: @unchecked Sendable {
  /// `[batch, tokens, d]`, level after level, each row-major.
  public var tokens: Tensor
  /// `[batch, tokens, d]`: sine encoding of the cell plus its level's embedding.
  public var positions: Tensor
  /// `[batch, tokens]` bool, true on padding.
  public var mask: Tensor
  /// The same mask for the attention, or nil when nothing is padded (every batch of one image,
  /// and batches of equal sizes), which spares the attention its masking pass over the values.
  public var attentionMask: Tensor?
  public var levels: FeatureLevels
  /// `[batch, levels, 2]`: the unpadded fraction of each level as (width, height).
  public var validRatios: Tensor

  /// `maps`: `[batch, d, H_l, W_l]` per level; `paddingMask [batch, H, W]` of the input images;
  /// `levelEmbedding [levels, d]`.
  public init(maps: [Tensor], paddingMask: Tensor, encoding: SinePositionEncoding, levelEmbedding: Tensor) {
    var flattened: [Tensor] = []
    var positions: [Tensor] = []
    var masks: [Tensor] = []
    var ratios: [Tensor] = []
    var shapes: [(height: Int, width: Int)] = []
    for (level, map) in maps.enumerated() {
      let (height, width) = (map.size(2), map.size(3))
      let mask = downsample(paddingMask: paddingMask, to: (height, width))
      shapes.append((height, width))
      flattened.append(map.flattened(from: 2).transposed(1, 2))
      positions.append(encoding(paddingMask: mask).flattened(from: 2).transposed(1, 2) + levelEmbedding[level].view(1, 1, -1))
      masks.append(mask.flattened(from: 1))
      let valid = mask.logicalNot()
      let validHeight = valid[.all, .all, 0].to(.float32).sum(dim: 1) / Double(height)
      let validWidth = valid[.all, 0, .all].to(.float32).sum(dim: 1) / Double(width)
      ratios.append(Tensor.stack([validWidth, validHeight], dim: -1))
    }
    levels = FeatureLevels(shapes: shapes)
    tokens = Tensor.cat(flattened, dim: 1)
    self.positions = Tensor.cat(positions, dim: 1)
    mask = Tensor.cat(masks, dim: 1)
    attentionMask = mask.any().item(Bool.self) ? mask : nil
    validRatios = Tensor.stack(ratios, dim: 1)
  }

  /// The encoder's reference points: cell centres of every level, normalized by the valid size of
  /// their own level and then scaled to each level's valid ratio, `[batch, tokens, levels, 2]`.
  public var encoderReferencePoints: Tensor {
    var perLevel: [Tensor] = []
    for (level, shape) in levels.shapes.enumerated() {
      let ys = Tensor.linspace(0.5, Double(shape.height) - 0.5, steps: shape.height, device: validRatios.device).view(shape.height, 1).expanded(to: [
        shape.height, shape.width,
      ])
      let xs = Tensor.linspace(0.5, Double(shape.width) - 0.5, steps: shape.width, device: validRatios.device).view(1, shape.width).expanded(to: [
        shape.height, shape.width,
      ])
      let y = ys.reshaped(1, -1) / (validRatios[.all, level, 1].unsqueezed(dim: 1) * Double(shape.height))
      let x = xs.reshaped(1, -1) / (validRatios[.all, level, 0].unsqueezed(dim: 1) * Double(shape.width))
      perLevel.append(Tensor.stack([x, y], dim: -1))
    }
    return Tensor.cat(perLevel, dim: 1).unsqueezed(dim: 2) * validRatios.unsqueezed(dim: 1)
  }

  /// Two-stage proposals (Deformable DETR, DINO): one box per memory cell (the cell's centre, size
  /// 0.05·2^level) as logits `[batch, tokens, 4]` (+∞ where padded or too close to the border), and
  /// the memory with those cells zeroed, `[batch, tokens, d]`, for the proposal heads.
  public static func twoStageProposals(memory: Tensor, mask: Tensor, levels: FeatureLevels) -> (memory: Tensor, proposals: Tensor) {
    let batch = memory.size(0)
    var proposals: [Tensor] = []
    for (level, (shape, start)) in zip(levels.shapes, levels.startIndices).enumerated() {
      let levelMask = mask[.all, start..<(start + shape.height * shape.width)].view(batch, shape.height, shape.width)
      let validHeight = levelMask[.all, .all, 0].logicalNot().to(.float32).sum(dim: 1)
      let validWidth = levelMask[.all, 0, .all].logicalNot().to(.float32).sum(dim: 1)
      let ys = Tensor.linspace(0, Double(shape.height - 1), steps: shape.height, device: memory.device).view(shape.height, 1).expanded(to: [
        shape.height, shape.width,
      ])
      let xs = Tensor.linspace(0, Double(shape.width - 1), steps: shape.width, device: memory.device).view(1, shape.width).expanded(to: [
        shape.height, shape.width,
      ])
      let grid = Tensor.stack([xs, ys], dim: -1).unsqueezed(dim: 0)
      let scale = Tensor.stack([validWidth, validHeight], dim: -1).view(batch, 1, 1, 2)
      let centres = (grid + 0.5) / scale
      let sizes = centres.onesLike() * (0.05 * Foundation.pow(2.0, Double(level)))
      proposals.append(Tensor.cat([centres, sizes], dim: -1).view(batch, -1, 4))
    }
    var proposal = Tensor.cat(proposals, dim: 1)
    let valid = ((proposal .> 0.01) .& (proposal .< 0.99)).all(dims: [-1], keepDims: true)
    proposal = (proposal / (1 - proposal)).log()
    proposal = proposal.filling(where: mask.unsqueezed(dim: -1), with: Double.infinity)
    proposal = proposal.filling(where: valid.logicalNot(), with: Double.infinity)
    var masked = memory.filling(where: mask.unsqueezed(dim: -1), with: 0)
    masked = masked.filling(where: valid.logicalNot(), with: 0)
    return (masked, proposal)
  }
}
