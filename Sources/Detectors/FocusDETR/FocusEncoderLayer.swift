import Detection
import Torch
import TorchNN

/// Focus-DETR's dual-attention encoder layer, on the tokens its cascade keeps: the
/// object-enhanced self-attention (OESM) among the `selfAttentionTopK` tokens with the best
/// category score, then deformable attention of every kept token to the multi-scale features, then
/// the feed-forward block. Keys as the official `Focus_DETR_BaseTransformerLayer`:
/// `attentions.0.attn.*` (self-attention), `norm2` (its norm), `attentions.1.*` (deformable),
/// `norms.{0,1}`, `ffns.0.layers.0.0`, `ffns.0.layers.1`.
final class FocusEncoderLayer: Module {
  let selfAttention: MultiheadAttention
  let selfAttentionNorm: LayerNorm
  let attention: MultiScaleDeformableAttention
  let linear1: Linear, linear2: Linear
  let norm1: LayerNorm, norm2: LayerNorm
  let dropout: Dropout

  init(dim: Int, heads: Int, levels: Int, points: Int, feedForwardDim: Int, dropout: Double) {
    selfAttention = MultiheadAttention(embedDim: dim, headCount: heads, dropout: dropout, batchFirst: true)
    selfAttentionNorm = LayerNorm(dim)
    attention = MultiScaleDeformableAttention(dim: dim, heads: heads, levels: levels, points: points)
    (linear1, linear2) = (Linear(dim, feedForwardDim), Linear(feedForwardDim, dim))
    (norm1, norm2) = (LayerNorm(dim), LayerNorm(dim))
    self.dropout = Dropout(dropout)
    super.init()
    registerModule(atPath: "attentions.0.attn", selfAttention)
    registerModule(atPath: "attentions.1", attention)
    registerModule(atPath: "ffns.0.layers.0.0", linear1)
    registerModule(atPath: "ffns.0.layers.1", linear2)
    registerModule(atPath: "norms.0", norm1)
    registerModule(atPath: "norms.1", norm2)
    registerModule("norm2", selfAttentionNorm)
    registerModule("dropout", self.dropout)
  }

  /// - `query`, `position [batch, k, d]`: the kept tokens and their position encodings,
  /// - `categoryScores [batch, k]`: which of them get the self-attention (the best `topK`),
  /// - `referencePoints [batch, k, levels, 2]`, `value [batch, tokens, d]` (all tokens; the official
  ///   code always passes the neck's un-encoded features), `valueMask [batch, tokens]` or nil.
  /// Returns the updated kept tokens `[batch, k, d]` and which of them got the self-attention,
  /// `[batch, min(topK, k)]` positions among the kept ones, best first.
  func callAsFunction(
    _ query: Tensor, position: Tensor, categoryScores: Tensor, topK: Int, referencePoints: Tensor, value: Tensor, levels: FeatureLevels,
    valueMask: Tensor?
  ) -> (tokens: Tensor, selfAttended: Tensor) {
    let (batch, kept, dim) = (query.size(0), query.size(1), query.size(2))
    let best = categoryScores.topK(Swift.min(topK, kept), dim: 1).indices
    let selected = best.unsqueezed(dim: -1).expanded(to: [batch, best.size(1), dim])
    let tokens = query.gather(dim: 1, index: selected)
    let positions = position.gather(dim: 1, index: selected)
    let attended = selfAttention(query: tokens + positions, key: tokens + positions, value: tokens).output
    let enhanced = selfAttentionNorm(tokens + dropout(attended))
    var x = query.scattering(dim: 1, index: selected, source: enhanced)
    let crossed = attention(query: x + position, referencePoints: referencePoints, input: value, levels: levels, paddingMask: valueMask)
    x = addAndNormalize(x, freshUpdate: dropout(crossed), norm: norm1)
    return (feedForward(x, linear1, linear2, dropout: dropout, norm: norm2), best)
  }
}
