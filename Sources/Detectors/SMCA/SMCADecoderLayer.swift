import Detection
import Torch
import TorchNN

/// One SMCA decoder layer (post-norm): query self-attention, cross-attention to the memory with the
/// spatial prior added to its logits, feed-forward. Keys equal the official code's: `self_attn`,
/// `multihead_attn`, `linear1`, `linear2`, `norm1`-`norm4`, `point1` (layer 0's centre MLP),
/// `point2` (per-head offsets), `point3` (per-head scales, absent for `.fixed`), and with several
/// key segments (the multi-scale model) `point4` (scale-selection logits).
///
/// With several segments each gets its own offsets, scales and softmax over its keys; the softmaxes
/// are weighted by the query's scale-selection weights (a softmax over segments, per image).
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
  /// Several segments only: the scale-selection logits `[queries, batch, segments]`.
  let selectionHead: Linear?
  let heads: Int
  let segmentCount: Int
  let scale: SpatialScale
  let smoothing: Double

  init(
    dim: Int, heads: Int, feedForwardDim: Int, dropout: Double, predictsCentres: Bool, scale: SpatialScale, smoothing: Double,
    segments: Int = 1
  ) {
    self.heads = heads
    segmentCount = segments
    self.scale = scale
    self.smoothing = smoothing
    selfAttention = MultiheadAttention(embedDim: dim, headCount: heads, dropout: dropout)
    crossAttention = MultiheadAttention(embedDim: dim, headCount: heads, dropout: dropout)
    linear1 = Linear(dim, feedForwardDim)
    linear2 = Linear(feedForwardDim, dim)
    (norm1, norm2, norm3, norm4) = (LayerNorm(dim), LayerNorm(dim), LayerNorm(dim), LayerNorm(dim))
    self.dropout = Dropout(dropout)
    centreHead = predictsCentres ? MLP(inputDim: dim, hiddenDim: dim, outputDim: 2, layerCount: 3) : nil
    offsetHead = Linear(dim, 2 * heads * segments)
    scaleHead = scale == .fixed ? nil : Linear(dim, scale.scalesPerHead * heads * segments)
    selectionHead = segments > 1 ? Linear(dim, segments) : nil
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
    if let selectionHead { registerModule("point4", selectionHead) }
  }

  /// Every scale starts at exactly 1 (weight 0, bias 1), as in the official initialization.
  func resetScaleHead() {
    guard let scaleHead else { return }
    Initialization.constant(scaleHead.weight, 0)
    Initialization.constant(scaleHead.bias!, 1)
  }

  /// - `target [queries, batch, d]`, `queryPosition` alike; `memory [tokens, batch, d]` (the segments'
  ///   cells one after the other), `memoryPosition` alike; `memoryPaddingMask [batch, tokens]` true on
  ///   padding; `segments` the memory's key segments in order.
  /// - `centres [queries, batch, 2]`: the centres (x, y) normalized to each image, from layer 0; nil
  ///   for layer 0, which predicts them. `imageSizes [1, batch, 2]`: each image's unpadded (width,
  ///   height) in pixels.
  /// - Returns the layer's output, the centre logits (layer 0 only) and the centres for later layers.
  func callAsFunction(
    _ target: Tensor, memory: Tensor, queryPosition: Tensor, memoryPosition: Tensor, memoryPaddingMask: Tensor, segments: [KeySegment],
    centres given: Tensor?, imageSizes: Tensor
  ) -> (output: Tensor, centreLogits: Tensor?, centres: Tensor) {
    precondition(segments.count == segmentCount, "SMCA decoder layer: \(segments.count) key segments for \(segmentCount)")
    let (queries, batch) = (target.size(0), target.size(1))
    let normalizedQuery = norm4(target + queryPosition)
    let offsets = offsetHead(normalizedQuery).view(queries, batch, segmentCount, heads, 2)
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
      centres = logits.sigmoid()
    }
    let centresInPixels = (centres * imageSizes).unsqueezed(dim: 2)  // [queries, batch, 1, 2]
    let scales = scaleHead.map { $0(normalizedQuery).view(queries, batch, segmentCount, -1) }
    let priors = segments.enumerated().map { index, segment in
      SpatialPrior.logWeights(
        points: centresInPixels / Double(segment.stride) + offsets[.all, .all, index], scales: scales?[.all, .all, index], scale: scale,
        smoothing: smoothing, size: segment.size, factor: segment.distanceFactor)
    }
    let attended = crossAttention(
      query: x + queryPosition, key: memory + memoryPosition, value: memory, keyPaddingMask: memoryPaddingMask,
      attentionMask: priors.count == 1 ? priors[0] : Tensor.cat(priors, dim: 2),
      normalize: selectionHead.map { head in
        scaleSelection(weights: head(normalizedQuery).softmax(dim: -1), segments: segments)
      }
    ).output
    x = norm2(x + dropout(attended))
    x = feedForward(x, linear1, linear2, dropout: dropout, norm: norm3)
    return (x, centreLogits, centres)
  }

  /// Scale-selection attention: a softmax over each segment's keys, weighted by the query's weight for
  /// the segment (`weights [queries, batch, segments]`, each image its own; the official code reads
  /// image 0's for the whole batch, right only for its batch of one per device).
  func scaleSelection(weights: Tensor, segments: [KeySegment]) -> (Tensor) -> Tensor {
    let (queries, batch) = (weights.size(0), weights.size(1))
    // [batch · heads, queries, segments]: row b·heads + h holds image b's weights.
    let perRow = weights.permuted(1, 0, 2).unsqueezed(dim: 1).expanded(to: [batch, heads, queries, segmentCount])
      .reshaped(batch * heads, queries, segmentCount)
    return { logits in
      var start = 0
      let parts = segments.enumerated().map { index, segment in
        defer { start += segment.tokenCount }
        return logits[.all, .all, start..<(start + segment.tokenCount)].softmax(dim: -1) * perRow[.all, .all, index..<(index + 1)]
      }
      return Tensor.cat(parts, dim: 2)
    }
  }
}
