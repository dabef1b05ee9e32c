import Torch
import TorchNN

/// Focus-DETR's foreground token selector (Zheng et al., ICCV 2023): one foreground logit per
/// multi-scale token, scored level by level from the coarsest, each finer level's features
/// modulated by the upsampled scores of the level above (`E + E · up(S) · α`, for scoring only).
/// Keys as the official code: `enc_mask_predictor.*` (the scorer) and `alpha` (one factor per
/// modulated level), registered by the model under its transformer.
public final class ForegroundTokenSelector: @unchecked Sendable {
  public let scorer: ForegroundScorer
  /// `[levels − 1]`, initialised U(−0.3, 0.3).
  public let alpha: Tensor

  public init(dim: Int, levels: Int) {
    scorer = ForegroundScorer(dim: dim)
    alpha = Tensor.rand([levels - 1]) * 0.6 - 0.3
  }

  /// Foreground logits `[batch, tokens]` (finest level first, as the tokens) of `features [batch,
  /// tokens, d]` (the projected `tokens + positions`, see `FocusDETR`).
  public func callAsFunction(_ features: Tensor, levels: FeatureLevels) -> Tensor {
    let (batch, dim) = (features.size(0), features.size(2))
    var coarsestFirst: [Tensor] = []
    var coarser: Tensor?
    for level in stride(from: levels.count - 1, through: 0, by: -1) {
      let (start, shape) = (levels.startIndices[level], levels.shapes[level])
      var levelFeatures = features[.all, start..<(start + shape.height * shape.width)]
      if let coarser {
        let upsampled = Functional.interpolate(coarser, size: (shape.height, shape.width), mode: .bilinear, alignCorners: true)
        let maps = levelFeatures.reshaped(batch, shape.height, shape.width, dim).permuted(0, 3, 1, 2)
        let factor = alpha[levels.count - 2 - level]
        levelFeatures = levelFeatures + (maps * upsampled * factor).permuted(0, 2, 3, 1).reshaped(batch, -1, dim)
      }
      let score = scorer(levelFeatures)
      coarsestFirst.append(score.reshaped(batch, -1))
      coarser = score.reshaped(batch, 1, shape.height, shape.width)
    }
    return Tensor.cat(coarsestFirst.reversed(), dim: 1)
  }
}

/// The official `MaskPredictor`: `LN → Linear(d, d) → GELU`, the second half of the channels
/// replaced by its mean over the level's tokens (padding included), then `Linear(d, d/2) → GELU →
/// Linear(d/2, d/4) → GELU → Linear(d/4, 1)`. Keys `layer1.{0,1}`, `layer2.{0,2,4}`.
public final class ForegroundScorer: Module {
  let norm: LayerNorm
  let input: Linear
  let hidden: [Linear]

  public init(dim: Int) {
    norm = LayerNorm(dim)
    input = Linear(dim, dim)
    hidden = [Linear(dim, dim / 2), Linear(dim / 2, dim / 4), Linear(dim / 4, 1)]
    super.init()
    registerModule(atPath: "layer1.0", norm)
    registerModule(atPath: "layer1.1", input)
    for (index, layer) in hidden.enumerated() { registerModule(atPath: "layer2.\(2 * index)", layer) }
  }

  /// `tokens [batch, n, d]` of one level → logits `[batch, n, 1]`.
  public func callAsFunction(_ tokens: Tensor) -> Tensor {
    let z = input(norm(tokens)).gelu()
    let halves = z.split(size: z.size(-1) / 2, dim: -1)
    let global = halves[1].mean(dims: [1], keepDims: true).expanded(to: halves[1].shape)
    var x = Tensor.cat([halves[0], global], dim: -1)
    for (index, layer) in hidden.enumerated() {
      x = layer(x)
      if index < hidden.count - 1 { x = x.gelu() }
    }
    return x
  }
}

/// Which tokens each sparse encoder layer updates: per image `floor(ρ · valid tokens) + 1` are
/// foreground, and layer l keeps the top `floor(r_l · most foreground tokens in the batch)` by
/// foreground score, best first (the cascade r shrinks with depth).
public struct ForegroundSelection: @unchecked Sendable {
  /// Per layer, `[batch, k_l]` token indices, best first.
  public var indices: [Tensor]
  /// Per image, how many of the selected rows are written back (its foreground count).
  public var foregroundCounts: [Int]
  /// `[batch, tokens]` the scores used to select, padding set to the batch's lowest score.
  public var scores: Tensor

  /// `logits [batch, tokens]`, `mask [batch, tokens]` true on padding.
  public init(logits: Tensor, mask: Tensor, rho: Double, cascade: [Double]) {
    let valid = mask.logicalNot().sum(dims: [1]).asArray(Int.self)
    // In float32, as the reference computes them (its truncations depend on it).
    foregroundCounts = valid.map { Int(Float($0) * Float(rho)) + 1 }
    let most = foregroundCounts.max() ?? 0
    let filled = logits.filling(where: mask, with: logits.min().item(Double.self))
    let tokens = logits.size(1)
    scores = filled
    indices = cascade.map { ratio in filled.topK(Swift.min(tokens, Int(Float(ratio) * Float(most))), dim: 1).indices }
  }
}
