import Foundation
import Torch
import TorchNN

/// Multi-head attention over inputs that are already projected (Conditional DETR's attention):
/// only the output projection (`out_proj`) has weights. Queries and keys may be wider than values
/// (Conditional cross-attention concatenates content and position per head); the logits are scaled
/// by the query/key head width^-1/2.
public final class ProjectedAttention: Module {
  public let heads: Int
  public let dropout: Double
  public let outProjection: Linear

  public init(valueDim: Int, heads: Int, dropout: Double) {
    self.heads = heads
    self.dropout = dropout
    outProjection = Linear(valueDim, valueDim)
    super.init()
    registerModule("out_proj", outProjection)
    // The official Conditional DETR attention (models/attention.py) starts its output bias at zero.
    Initialization.constant(outProjection.bias!, 0)
  }

  /// `query [L, B, Dqk]`, `key [S, B, Dqk]`, `value [S, B, Dv]`, `keyPaddingMask [B, S]` (true = ignore) → `[L, B, Dv]`.
  public func callAsFunction(query: Tensor, key: Tensor, value: Tensor, keyPaddingMask: Tensor? = nil) -> Tensor {
    let (length, batch, queryDim) = (query.size(0), query.size(1), query.size(2))
    let sourceLength = key.size(0)
    let valueDim = value.size(2)
    let (queryHead, valueHead) = (queryDim / heads, valueDim / heads)
    let q = (query * (1 / Foundation.sqrt(Double(queryHead)))).reshaped(length, batch * heads, queryHead).transposed(0, 1)
    let k = key.reshaped(sourceLength, batch * heads, queryHead).transposed(0, 1)
    let v = value.reshaped(sourceLength, batch * heads, valueHead).transposed(0, 1)
    var scores = q.bmm(k.transposed(1, 2))
    if let keyPaddingMask {
      let blocked = keyPaddingMask.view(batch, 1, 1, sourceLength).expanded(to: [-1, heads, -1, -1]).reshaped(
        batch * heads, 1, sourceLength)
      scores = scores.filling(where: blocked, with: -Double.infinity)
    }
    let attention = Functional.dropout(scores.softmax(dim: -1), probability: dropout, training: isTraining)
    let output = attention.bmm(v).transposed(0, 1).contiguous().view(length, batch, valueDim)
    return outProjection(output)
  }
}
