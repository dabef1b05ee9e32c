import Detection
import Torch
import TorchNN

/// One SMCA decoder layer (post-norm): query self-attention, cross-attention to the memory with the
/// spatial prior added to its logits, feed-forward. Keys equal the official code's: `self_attn`,
/// `multihead_attn`, `linear1`, `linear2`, `norm1`-`norm4`, `point1` (layer 0's centre MLP),
/// `point2` (per-head offsets), `point3` (per-head scales, absent for `.fixed`).
final class SMCADecoderLayer: Module {
  let selfAttention: MultiheadAttention
  let crossAttention: MultiheadAttention
  let linear1: Linear
  let linear2: Linear
  let norm1: LayerNorm
  let norm2: LayerNorm
  let norm3: LayerNorm
  /// Normalizes content + query position before the centre, offsets and scales are read from it.
  let norm4: LayerNorm
  let dropout: Dropout
  /// Layer 0 only: the centre logits `[queries, batch, 2]` from the normalized query.
  let centreHead: MLP?
  let offsetHead: Linear
  let scaleHead: Linear?
  let heads: Int
  let scale: SpatialScale
  let smoothing: Double

  init(dim: Int, heads: Int, feedForwardDim: Int, dropout: Double, predictsCentres: Bool, scale: SpatialScale, smoothing: Double) {
    self.heads = heads
    self.scale = scale
    self.smoothing = smoothing
    selfAttention = MultiheadAttention(embedDim: dim, headCount: heads, dropout: dropout)
    crossAttention = MultiheadAttention(embedDim: dim, headCount: heads, dropout: dropout)
    linear1 = Linear(dim, feedForwardDim)
    linear2 = Linear(feedForwardDim, dim)
    (norm1, norm2, norm3, norm4) = (LayerNorm(dim), LayerNorm(dim), LayerNorm(dim), LayerNorm(dim))
    self.dropout = Dropout(dropout)
    centreHead = predictsCentres ? MLP(inputDim: dim, hiddenDim: dim, outputDim: 2, layerCount: 3) : nil
    offsetHead = Linear(dim, 2 * heads)
    scaleHead = scale == .fixed ? nil : Linear(dim, scale.scalesPerHead * heads)
    super.init()
    registerModule("self_attn", selfAttention)
    registerModule("multihead_attn", crossAttention)
    registerModule("linear1", linear1)
    registerModule("dropout", self.dropout)
    registerModule("linear2", linear2)
    registerModule("norm1", norm1)
    registerModule("norm2", norm2)
    registerModule("norm3", norm3)
    registerModule("norm4", norm4)
    if let centreHead { registerModule("point1", centreHead) }
    registerModule("point2", offsetHead)
    if let scaleHead { registerModule("point3", scaleHead) }
  }

  /// Every scale starts at exactly 1 (weight 0, bias 1), as in the official initialization.
  func resetScaleHead() {
    guard let scaleHead else { return }
    Initialization.constant(scaleHead.weight, 0)
    Initialization.constant(scaleHead.bias!, 1)
  }

  /// - `target [queries, batch, d]`, `queryPosition` alike; `memory [h·w, batch, d]`, `memoryPosition`
  ///   alike; `memoryPaddingMask [batch, h·w]` true on padding; `mapSize` the memory's (h, w).
  /// - `centres [queries, batch, 2]`: the centres (x, y) in cells, from layer 0; nil for layer 0, which
  ///   predicts them from `cellsPerImage [1, batch, 2]` (each image's unpadded width and height in cells).
  /// - Returns the layer's output, the centre logits (layer 0 only) and the centres for later layers.
  func callAsFunction(
    _ target: Tensor, memory: Tensor, queryPosition: Tensor, memoryPosition: Tensor, memoryPaddingMask: Tensor,
    mapSize: (height: Int, width: Int), centres given: Tensor?, cellsPerImage: Tensor
  ) -> (output: Tensor, centreLogits: Tensor?, centres: Tensor) {
    let (queries, batch) = (target.size(0), target.size(1))
    let normalizedQuery = norm4(target + queryPosition)
    let offsets = offsetHead(normalizedQuery).view(queries, batch, heads, 2)
    let query = target + queryPosition
    var x = norm1(target + dropout(selfAttention(query: query, key: query, value: target).output))

    var centreLogits: Tensor?
    let centres: Tensor
    if let given {
      centres = given
    } else {
      guard let centreHead else { preconditionFailure("only the first SMCA decoder layer predicts centres") }
      let logits = centreHead(normalizedQuery)
      centreLogits = logits
      centres = logits.sigmoid() * cellsPerImage
    }
    let prior = SpatialPrior.logWeights(
      points: centres.unsqueezed(dim: 2) + offsets, scales: scaleHead.map { $0(normalizedQuery) }, scale: scale, smoothing: smoothing,
      size: mapSize)
    let attended = crossAttention(
      query: x + queryPosition, key: memory + memoryPosition, value: memory, keyPaddingMask: memoryPaddingMask, attentionMask: prior
    ).output
    x = norm2(x + dropout(attended))
    x = feedForward(x, linear1, linear2, dropout: dropout, norm: norm3)
    return (x, centreLogits, centres)
  }
}
