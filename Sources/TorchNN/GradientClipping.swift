import Torch

/// Scales gradients so that their global norm is at most `maxNorm`, as PyTorch's
/// `clip_grad_norm_`: total = ‖(‖g₁‖, ‖g₂‖, ...)‖, each g *= min(1, maxNorm / (total + 1e-6)).
/// Returns the total norm before clipping (infinite or NaN if a gradient is).
@discardableResult
public func clipGradientNorm(_ parameters: [Tensor], maxNorm: Double, normType: Double = 2) -> Double {
  let gradients = parameters.compactMap(\.grad)
  guard !gradients.isEmpty else { return 0 }
  return withNoGrad {
    let norms = Tensor.stack(gradients.map { $0.norm(normType) })
    let total = normType.isInfinite ? norms.max() : norms.norm(normType)
    let coefficient = (Tensor.full([], maxNorm, dtype: total.dtype, device: total.device) / (total + 1e-6)).clamped(max: 1)
    for gradient in gradients { gradient *= coefficient }
    return total.item(Double.self)
  }
}
