import Detection
import Foundation
import Torch
import TorchNN

/// One branch of DSA (Wu et al., arXiv 2012.07630), as the authors' code builds it: single-head
/// position self-attention over a feature map with a gated residual, `Y = γ · (V · softmax(QᵀK /
/// √C)ᵀ) + X`, where Q and K are 1×1 projections to C/8 channels, V a 1×1 projection to C, and the
/// scale is the input width C (not the query width). γ starts at 0, so the branch starts as the
/// identity. Keys `query_conv`, `key_conv`, `value_conv`, `gamma`.
final class DecoupledSelfAttention: Module, UnaryLayer {
  let query: Conv2d
  let key: Conv2d
  let value: Conv2d
  let gamma: Tensor

  init(channels: Int) {
    query = Conv2d(channels, channels / 8, kernelSize: 1)
    key = Conv2d(channels, channels / 8, kernelSize: 1)
    value = Conv2d(channels, channels, kernelSize: 1)
    gamma = Tensor.zeros([1])
    super.init()
    registerModule("query_conv", query)
    registerModule("key_conv", key)
    registerModule("value_conv", value)
    _ = registerParameter("gamma", gamma)
    // The pyramid's initialization (mmdet's FPN.init_weights): Xavier-uniform, bias 0.
    for conv in [query, key, value] {
      Initialization.xavierUniform(conv.weight)
      Initialization.constant(conv.bias!, 0)
    }
  }

  /// `x [batch, C, H, W]` → the same shape.
  func callAsFunction(_ x: Tensor) -> Tensor {
    let (batch, channels, height, width) = (x.size(0), x.size(1), x.size(2), x.size(3))
    let positions = height * width
    let q = query(x).reshaped(batch, -1, positions).transposed(1, 2)  // [B, N, C/8]
    let k = key(x).reshaped(batch, -1, positions)  // [B, C/8, N]
    let attention = (q.bmm(k) / Foundation.sqrt(Double(channels))).softmax(dim: -1)  // [B, N, N], over keys
    let v = value(x).reshaped(batch, channels, positions)  // [B, C, N]
    let attended = v.bmm(attention.transposed(1, 2)).reshaped(batch, channels, height, width)
    return gamma * attended + x
  }
}
