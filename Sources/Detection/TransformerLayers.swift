import Torch
import TorchNN

/// DETR's post-norm encoder layer (keys `self_attn`, `linear1`, `linear2`, `norm1`, `norm2`):
/// x ← LN₁(x + Attn(q = k = x + pos, v = x)); x ← LN₂(x + FFN(x)). Sequences are `[length, batch, dim]`.
public final class TransformerEncoderLayer: Module {
  public let selfAttention: MultiheadAttention
  public let linear1: Linear
  public let linear2: Linear
  public let norm1: LayerNorm
  public let norm2: LayerNorm
  public let dropout: Dropout

  public init(dim: Int, heads: Int, feedForwardDim: Int, dropout: Double) {
    selfAttention = MultiheadAttention(embedDim: dim, headCount: heads, dropout: dropout)
    linear1 = Linear(dim, feedForwardDim)
    linear2 = Linear(feedForwardDim, dim)
    norm1 = LayerNorm(dim)
    norm2 = LayerNorm(dim)
    self.dropout = Dropout(dropout)
    super.init()
    registerModule("self_attn", selfAttention)
    registerModule("linear1", linear1)
    registerModule("dropout", self.dropout)
    registerModule("linear2", linear2)
    registerModule("norm1", norm1)
    registerModule("norm2", norm2)
  }

  public func callAsFunction(_ source: Tensor, position: Tensor, keyPaddingMask: Tensor?) -> Tensor {
    let query = source + position
    let attended = selfAttention(query: query, key: query, value: source, keyPaddingMask: keyPaddingMask).output
    var x = norm1(source + dropout(attended))
    x = feedForward(x, linear1, linear2, dropout: dropout, norm: norm2)
    return x
  }
}

/// DETR's post-norm decoder layer (keys `self_attn`, `multihead_attn`, `linear1`, `linear2`,
/// `norm1`-`norm3`): self-attention over the queries, cross-attention to the memory, FFN.
public final class TransformerDecoderLayer: Module {
  public let selfAttention: MultiheadAttention
  public let crossAttention: MultiheadAttention
  public let linear1: Linear
  public let linear2: Linear
  public let norm1: LayerNorm
  public let norm2: LayerNorm
  public let norm3: LayerNorm
  public let dropout: Dropout

  public init(dim: Int, heads: Int, feedForwardDim: Int, dropout: Double) {
    selfAttention = MultiheadAttention(embedDim: dim, headCount: heads, dropout: dropout)
    crossAttention = MultiheadAttention(embedDim: dim, headCount: heads, dropout: dropout)
    linear1 = Linear(dim, feedForwardDim)
    linear2 = Linear(feedForwardDim, dim)
    norm1 = LayerNorm(dim)
    norm2 = LayerNorm(dim)
    norm3 = LayerNorm(dim)
    self.dropout = Dropout(dropout)
    super.init()
    registerModule("self_attn", selfAttention)
    registerModule("multihead_attn", crossAttention)
    registerModule("linear1", linear1)
    registerModule("dropout", self.dropout)
    registerModule("linear2", linear2)
    registerModule("norm1", norm1)
    registerModule("norm2", norm2)
    registerModule("norm3", norm3)
  }

  /// - `target [queries, batch, dim]`, `memory [hw, batch, dim]`, `queryPosition` like target,
  ///   `memoryPosition` like memory, `memoryPaddingMask [batch, hw]` true on padding.
  public func callAsFunction(_ target: Tensor, memory: Tensor, queryPosition: Tensor, memoryPosition: Tensor, memoryPaddingMask: Tensor?)
    -> Tensor
  {
    let query = target + queryPosition
    var x = norm1(target + dropout(selfAttention(query: query, key: query, value: target).output))
    let attended = crossAttention(query: x + queryPosition, key: memory + memoryPosition, value: memory, keyPaddingMask: memoryPaddingMask)
      .output
    x = norm2(x + dropout(attended))
    x = feedForward(x, linear1, linear2, dropout: dropout, norm: norm3)
    return x
  }
}

/// Resizes a padding mask `[batch, H, W]` to a feature map's `(h, w)` with nearest sampling, as DETR does.
public func downsample(paddingMask: Tensor, to size: (Int, Int)) -> Tensor {
  Functional.interpolate(paddingMask.unsqueezed(dim: 0).to(.float32), size: size, mode: .nearest).to(.bool).squeezed(dim: 0)
}
