import Detection
import Torch

/// What a DINO forward pass predicts: every decoder layer's matching-query predictions, the
/// denoising queries' (training with targets only), the encoder's selected proposals, and the
/// denoising layout.
public struct DINOOutput: @unchecked Sendable {
  /// Matching queries: `logits [batch, queries, classes]`, boxes (cx, cy, w, h) normalized, per decoder layer.
  public var layers: [LayerPredictions]
  /// Denoising queries per decoder layer, `[batch, 2 · maxTargets · groups, ...]`.
  public var denoising: [LayerPredictions]
  public var denoisingGroups: DenoisingGroups?
  /// The top-k encoder proposals that became the queries' first reference boxes.
  public var encoder: LayerPredictions
}
