import Detection
import Torch
import TorchNN

/// Deformable DETR's encoder layer (keys `self_attn`, `norm1`, `linear1`, `linear2`, `norm2`), batch first.
final class DeformableEncoderLayer: Module {
  let attention: MultiScaleDeformableAttention
  let linear1: Linear, linear2: Linear
  let norm1: LayerNorm, norm2: LayerNorm
  let dropout: Dropout

  init(dim: Int, heads: Int, levels: Int, points: Int, feedForwardDim: Int, dropout: Double) {
    attention = MultiScaleDeformableAttention(dim: dim, heads: heads, levels: levels, points: points)
    (linear1, linear2) = (Linear(dim, feedForwardDim), Linear(feedForwardDim, dim))
    (norm1, norm2) = (LayerNorm(dim), LayerNorm(dim))
    self.dropout = Dropout(dropout)
    super.init()
    registerModule("self_attn", attention)
    registerModule("norm1", norm1)
    registerModule("linear1", linear1)
    registerModule("linear2", linear2)
    registerModule("norm2", norm2)
    registerModule("dropout", self.dropout)
  }

  func callAsFunction(_ source: Tensor, position: Tensor, referencePoints: Tensor, levels: FeatureLevels, paddingMask: Tensor?) -> Tensor {
    let attended = attention(
      query: source + position, referencePoints: referencePoints, input: source, levels: levels, paddingMask: paddingMask)
    let x = addAndNormalize(source, freshUpdate: dropout(attended), norm: norm1)
    return feedForward(x, linear1, linear2, dropout: dropout, norm: norm2)
  }
}

/// Deformable DETR's decoder layer: self-attention (`self_attn`, then `norm2`), deformable
/// cross-attention to the memory (`cross_attn`, then `norm1`), FFN (`norm3`), batch first.
final class DeformableDecoderLayer: Module {
  let selfAttention: MultiheadAttention
  let crossAttention: MultiScaleDeformableAttention
  let linear1: Linear, linear2: Linear
  let norm1: LayerNorm, norm2: LayerNorm, norm3: LayerNorm
  let dropout: Dropout

  init(dim: Int, heads: Int, levels: Int, points: Int, feedForwardDim: Int, dropout: Double) {
    selfAttention = MultiheadAttention(embedDim: dim, headCount: heads, dropout: dropout)
    crossAttention = MultiScaleDeformableAttention(dim: dim, heads: heads, levels: levels, points: points)
    (linear1, linear2) = (Linear(dim, feedForwardDim), Linear(feedForwardDim, dim))
    (norm1, norm2, norm3) = (LayerNorm(dim), LayerNorm(dim), LayerNorm(dim))
    self.dropout = Dropout(dropout)
    super.init()
    registerModule("cross_attn", crossAttention)
    registerModule("norm1", norm1)
    registerModule("self_attn", selfAttention)
    registerModule("norm2", norm2)
    registerModule("linear1", linear1)
    registerModule("linear2", linear2)
    registerModule("norm3", norm3)
    registerModule("dropout", self.dropout)
  }

  /// `target`, `queryPosition [batch, queries, d]`; `referencePoints [batch, queries, levels, 2|4]`.
  func callAsFunction(
    _ target: Tensor, queryPosition: Tensor, referencePoints: Tensor, memory: Tensor, levels: FeatureLevels, memoryMask: Tensor?
  ) -> Tensor {
    let query = (target + queryPosition).transposed(0, 1)
    let attended = selfAttention(query: query, key: query, value: target.transposed(0, 1)).output.transposed(0, 1)
    var x = norm2(target + dropout(attended))
    let crossed = crossAttention(
      query: x + queryPosition, referencePoints: referencePoints, input: memory, levels: levels, paddingMask: memoryMask)
    x = norm1(x + dropout(crossed))
    x = feedForward(x, linear1, linear2, dropout: dropout, norm: norm3)
    return x
  }
}
