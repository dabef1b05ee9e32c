import Detection
import Torch
import TorchNN

/// One layer of the released multi-scale SMCA-DETR encoder: no attention, depthwise convolutions
/// within each of the four maps (strides 8, 16, 32, 64) and between neighbours, then a feed-forward
/// block per token. Keys equal the official `transformer_44_dot_4.py`: `self_attn_8` ... `self_attn_64`
/// (a k×k depthwise convolution per map), `high_to_low` (k×k depthwise, stride 2: the finer map to the
/// coarser), `low_to_high` (k×k depthwise, then bilinear upsampling with aligned corners: the coarser to
/// the finer), `conv_1`, `conv_2` (1×1), `linear1`, `linear2`, `norm1`, `norm2`; all but the per-map
/// convolutions shared by the four maps. Padding masks are not used, as in the official code.
final class SMCADepthwiseEncoderLayer: Module {
  let withinMaps: [Conv2d]
  let fineToCoarse: Conv2d
  let coarseToFine: Conv2d
  let inputProjection: Conv2d
  let outputProjection: Conv2d
  let linear1: Linear
  let linear2: Linear
  let norm1: LayerNorm
  let norm2: LayerNorm
  let dropout: Dropout

  init(dim: Int, feedForwardDim: Int, kernelSize: Int, dropout: Double) {
    let depthwise = { (stride: Int) in Conv2d(dim, dim, kernelSize: kernelSize, stride: stride, padding: kernelSize / 2, groups: dim) }
    withinMaps = (0..<4).map { _ in depthwise(1) }
    fineToCoarse = depthwise(2)
    coarseToFine = depthwise(1)
    inputProjection = Conv2d(dim, dim, kernelSize: 1)
    outputProjection = Conv2d(dim, dim, kernelSize: 1)
    linear1 = Linear(dim, feedForwardDim)
    linear2 = Linear(feedForwardDim, dim)
    norm1 = LayerNorm(dim)
    norm2 = LayerNorm(dim)
    self.dropout = Dropout(dropout)
    super.init()
    for (convolution, stride) in zip(withinMaps, [8, 16, 32, 64]) { registerModule("self_attn_\(stride)", convolution) }
    registerModule("high_to_low", fineToCoarse)
    registerModule("low_to_high", coarseToFine)
    registerModule("conv_1", inputProjection)
    registerModule("conv_2", outputProjection)
    registerModule("linear1", linear1)
    registerModule("dropout", self.dropout)
    registerModule("linear2", linear2)
    registerModule("norm1", norm1)
    registerModule("norm2", norm2)
  }

  /// `maps`: four `[batch, d, h_k, w_k]`, finest first, each map half the size of the previous (rounded
  /// up); `positions` alike (sine positions plus the level embedding). Returns the four updated maps.
  func callAsFunction(_ maps: [Tensor], positions: [Tensor]) -> [Tensor] {
    precondition(maps.count == 4 && positions.count == 4, "the SMCA multi-scale encoder takes four maps")
    // Positions enter the convolutions (as the queries of an attention would), not the residual.
    let within = zip(zip(maps, positions), withinMaps).map { pair, convolution in convolution(inputProjection(pair.0 + pair.1)) }
    let down = within.dropLast().map { fineToCoarse($0) }  // map k to map k + 1's size
    let up = (1..<4).map { index in  // map k to map k - 1's size
      let finer = within[index - 1]
      return Functional.interpolate(coarseToFine(within[index]), size: (finer.size(2), finer.size(3)), mode: .bilinear, alignCorners: true)
    }
    return maps.indices.map { index in
      var mixed = within[index]
      if index + 1 < 4 { mixed = mixed + up[index] }
      if index > 0 { mixed = mixed + down[index - 1] }
      let (batch, channels, height, width) = (maps[index].size(0), maps[index].size(1), maps[index].size(2), maps[index].size(3))
      var tokens = (maps[index] + dropout(outputProjection(mixed))).flattened(from: 2).permuted(2, 0, 1)  // [h·w, batch, d]
      tokens = norm1(tokens)
      tokens = feedForward(tokens, linear1, linear2, dropout: dropout, norm: norm2)
      return tokens.permuted(1, 2, 0).reshaped(batch, channels, height, width)
    }
  }
}
