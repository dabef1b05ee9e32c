import Torch
import TorchNN

/// The deformable encoder layer of detrex's DINO (and of Deformable DETR; only the keys differ):
/// multi-scale deformable self-attention of the tokens, then the feed-forward block, each with a
/// residual and a post-norm. Keys `attentions.0.*`, `norms.{0,1}`, `ffns.0.layers.0.0` and `ffns.0.layers.1`.
public final class DetrexDeformableEncoderLayer: Module {
  public let attention: MultiScaleDeformableAttention
  let linear1: Linear, linear2: Linear
  let norm1: LayerNorm, norm2: LayerNorm
  let dropout: Dropout

  public init(dim: Int, heads: Int, levels: Int, points: Int, feedForwardDim: Int, dropout: Double) {
    attention = MultiScaleDeformableAttention(dim: dim, heads: heads, levels: levels, points: points)
    (linear1, linear2) = (Linear(dim, feedForwardDim), Linear(feedForwardDim, dim))
    (norm1, norm2) = (LayerNorm(dim), LayerNorm(dim))
    self.dropout = Dropout(dropout)
    super.init()
    registerModule(atPath: "attentions.0", attention)
    registerModule(atPath: "ffns.0.layers.0.0", linear1)
    registerModule(atPath: "ffns.0.layers.1", linear2)
    registerModule(atPath: "norms.0", norm1)
    registerModule(atPath: "norms.1", norm2)
    registerModule("dropout", self.dropout)
  }

  /// `tokens`, `position [batch, tokens, d]`; `referencePoints [batch, tokens, levels, 2]`;
  /// `paddingMask [batch, tokens]` (true on padding) or nil when nothing is padded.
  public func callAsFunction(_ tokens: Tensor, position: Tensor, referencePoints: Tensor, levels: FeatureLevels, paddingMask: Tensor?)
    -> Tensor
  {
    let attended = attention(
      query: tokens + position, referencePoints: referencePoints, input: tokens, levels: levels, paddingMask: paddingMask)
    let x = addAndNormalize(tokens, freshUpdate: dropout(attended), norm: norm1)
    return feedForward(x, linear1, linear2, dropout: dropout, norm: norm2)
  }
}

/// The decoder layer of detrex's DINO: self-attention among the queries (with an attention mask
/// that keeps denoising groups apart), deformable cross-attention to the memory around each
/// query's reference box, and the feed-forward block, each with a residual and a post-norm. Keys
/// `attentions.0.attn.*` (PyTorch multi-head attention), `attentions.1.*` (deformable),
/// `norms.{0,1,2}`, `ffns.0.layers.0.0`, `ffns.0.layers.1`.
public final class DetrexDeformableDecoderLayer: Module {
  let selfAttention: MultiheadAttention
  public let crossAttention: MultiScaleDeformableAttention
  let linear1: Linear, linear2: Linear
  let norm1: LayerNorm, norm2: LayerNorm, norm3: LayerNorm
  let dropout: Dropout

  public init(dim: Int, heads: Int, levels: Int, points: Int, feedForwardDim: Int, dropout: Double) {
    selfAttention = MultiheadAttention(embedDim: dim, headCount: heads, dropout: dropout, batchFirst: true)
    crossAttention = MultiScaleDeformableAttention(dim: dim, heads: heads, levels: levels, points: points)
    (linear1, linear2) = (Linear(dim, feedForwardDim), Linear(feedForwardDim, dim))
    (norm1, norm2, norm3) = (LayerNorm(dim), LayerNorm(dim), LayerNorm(dim))
    self.dropout = Dropout(dropout)
    super.init()
    registerModule(atPath: "attentions.0.attn", selfAttention)
    registerModule(atPath: "attentions.1", crossAttention)
    registerModule(atPath: "ffns.0.layers.0.0", linear1)
    registerModule(atPath: "ffns.0.layers.1", linear2)
    registerModule(atPath: "norms.0", norm1)
    registerModule(atPath: "norms.1", norm2)
    registerModule(atPath: "norms.2", norm3)
    registerModule("dropout", self.dropout)
  }

  /// `target`, `queryPosition [batch, queries, d]`; `referenceBoxes [batch, queries, levels, 4]`
  /// (cx, cy, w, h) scaled to each level's valid region; `attentionMask [queries, queries]` bool,
  /// true where a query must not see another; `memoryMask [batch, tokens]` or nil.
  public func callAsFunction(
    _ target: Tensor, queryPosition: Tensor, referenceBoxes: Tensor, memory: Tensor, levels: FeatureLevels, attentionMask: Tensor?,
    memoryMask: Tensor?
  ) -> Tensor {
    let query = target + queryPosition
    let attended = selfAttention(query: query, key: query, value: target, attentionMask: attentionMask).output
    var x = norm1(target + dropout(attended))
    let crossed = crossAttention(
      query: x + queryPosition, referencePoints: referenceBoxes, input: memory, levels: levels, paddingMask: memoryMask)
    x = addAndNormalize(x, freshUpdate: dropout(crossed), norm: norm2)
    return feedForward(x, linear1, linear2, dropout: dropout, norm: norm3)
  }
}
