import Foundation
import Torch

/// Multi-head attention with the parameters, keys, initialisation and numbers of PyTorch's
/// `nn.MultiheadAttention`: `in_proj_weight [3E, E]` and `in_proj_bias [3E]` (or `q_proj_weight`,
/// `k_proj_weight`, `v_proj_weight` when key or value widths differ), `out_proj.weight`, `out_proj.bias`.
///
/// Inputs are sequence-first, `[length, batch, E]`, unless `batchFirst`.
public final class MultiheadAttention: Module {
  public let embedDim: Int
  public let headCount: Int
  public let dropout: Double
  public let batchFirst: Bool
  public let inProjectionWeight: Tensor?
  public let queryProjectionWeight: Tensor?
  public let keyProjectionWeight: Tensor?
  public let valueProjectionWeight: Tensor?
  public let inProjectionBias: Tensor?
  public let outProjection: Linear

  public init(
    embedDim: Int, headCount: Int, dropout: Double = 0, bias: Bool = true, keyDim: Int? = nil, valueDim: Int? = nil,
    batchFirst: Bool = false
  ) {
    precondition(embedDim % headCount == 0, "MultiheadAttention: embedDim \(embedDim) not divisible by \(headCount) heads")
    self.embedDim = embedDim
    self.headCount = headCount
    self.dropout = dropout
    self.batchFirst = batchFirst
    let keyDim = keyDim ?? embedDim
    let valueDim = valueDim ?? embedDim
    let packed = keyDim == embedDim && valueDim == embedDim
    inProjectionWeight = packed ? Tensor.empty([3 * embedDim, embedDim]) : nil
    queryProjectionWeight = packed ? nil : Tensor.empty([embedDim, embedDim])
    keyProjectionWeight = packed ? nil : Tensor.empty([embedDim, keyDim])
    valueProjectionWeight = packed ? nil : Tensor.empty([embedDim, valueDim])
    inProjectionBias = bias ? Tensor.empty([3 * embedDim]) : nil
    // Created before the in-projection is initialised, so the random numbers are drawn in PyTorch's order.
    outProjection = Linear(embedDim, embedDim, bias: bias)
    super.init()
    if let inProjectionWeight {
      registerParameter("in_proj_weight", inProjectionWeight)
      Initialization.xavierUniform(inProjectionWeight)
    } else {
      for (name, weight) in [
        ("q_proj_weight", queryProjectionWeight!), ("k_proj_weight", keyProjectionWeight!), ("v_proj_weight", valueProjectionWeight!),
      ] {
        registerParameter(name, weight)
        Initialization.xavierUniform(weight)
      }
    }
    if let inProjectionBias {
      registerParameter("in_proj_bias", inProjectionBias)
      Initialization.constant(inProjectionBias, 0)
      Initialization.constant(outProjection.bias!, 0)
    }
    registerModule("out_proj", outProjection)
  }

  /// Attends `query [L, N, E]` to `key [S, N, Ek]` and `value [S, N, Ev]` (batch first when configured).
  ///
  /// - `keyPaddingMask`: bool `[N, S]`, true where a key is padding and must be ignored.
  /// - `attentionMask`: bool (true = blocked) or additive float, `[L, S]` or `[N * heads, L, S]`.
  /// - `normalize`: turns the masked logits `[N * heads, L, S]` into attention weights; a softmax over
  ///   the keys unless given (SMCA-DETR's multi-scale decoder takes one softmax per group of keys).
  /// - Returns the output `[L, N, E]` and, when `needWeights`, the weights `[N, L, S]` averaged over
  ///   heads (or `[N, heads, L, S]` when `averageWeights` is false).
  public func callAsFunction(
    query: Tensor, key: Tensor, value: Tensor, keyPaddingMask: Tensor? = nil, attentionMask: Tensor? = nil, needWeights: Bool = false,
    averageWeights: Bool = true, normalize: ((Tensor) -> Tensor)? = nil
  ) -> (output: Tensor, weights: Tensor?) {
    var (q, k, v) = batchFirst ? (query.transposed(0, 1), key.transposed(0, 1), value.transposed(0, 1)) : (query, key, value)
    let targetLength = q.size(0)
    let batch = q.size(1)
    let sourceLength = k.size(0)
    let headDim = embedDim / headCount

    let biases = inProjectionBias?.chunked(3)
    let weights = inProjectionWeight?.chunked(3) ?? [queryProjectionWeight!, keyProjectionWeight!, valueProjectionWeight!]
    q = Functional.linear(q, weight: weights[0], bias: biases?[0])
    k = Functional.linear(k, weight: weights[1], bias: biases?[1])
    v = Functional.linear(v, weight: weights[2], bias: biases?[2])

    // [length, batch, E] -> [batch * heads, length, headDim]
    q = q.reshaped(targetLength, batch * headCount, headDim).transposed(0, 1)
    k = k.reshaped(sourceLength, batch * headCount, headDim).transposed(0, 1)
    v = v.reshaped(sourceLength, batch * headCount, headDim).transposed(0, 1)

    var scores = (q * (1.0 / Foundation.sqrt(Double(headDim)))).bmm(k.transposed(1, 2))
    if let attentionMask {
      let mask = attentionMask.rank == 2 ? attentionMask.unsqueezed(dim: 0) : attentionMask
      scores = mask.dtype == .bool ? scores.filling(where: mask, with: -Double.infinity) : scores + mask
    }
    if let keyPaddingMask {
      let blocked = keyPaddingMask.view(batch, 1, 1, sourceLength).expanded(to: [-1, headCount, -1, -1]).reshaped(
        batch * headCount, 1, sourceLength)
      scores = scores.filling(where: blocked, with: -Double.infinity)
    }
    var attention = normalize?(scores) ?? scores.softmax(dim: -1)
    attention = Functional.dropout(attention, probability: dropout, training: isTraining)

    var output = attention.bmm(v)  // [batch * heads, L, headDim]
    output = output.transposed(0, 1).contiguous().view(targetLength * batch, embedDim)
    output = outProjection(output).view(targetLength, batch, embedDim)
    if batchFirst { output = output.transposed(0, 1) }

    guard needWeights else { return (output, nil) }
    let perHead = attention.view(batch, headCount, targetLength, sourceLength)
    return (output, averageWeights ? perHead.mean(dim: 1) : perHead)
  }
}
