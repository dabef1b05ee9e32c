import Torch

/// `y = x Wᵀ + b`: input `[..., inFeatures]`, output `[..., outFeatures]`. Keys `weight` `[out, in]`, `bias` `[out]`.
public final class Linear: Module, UnaryLayer {
  public let weight: Tensor
  public let bias: Tensor?

  /// Initialised as PyTorch's `nn.Linear`.
  public init(_ inFeatures: Int, _ outFeatures: Int, bias: Bool = true) {
    weight = Tensor.empty([outFeatures, inFeatures])
    self.bias = bias ? Tensor.empty([outFeatures]) : nil
    super.init()
    registerParameter("weight", weight)
    if let b = self.bias { registerParameter("bias", b) }
    Initialization.resetLikePyTorch(weight: weight, bias: self.bias)
  }

  public func callAsFunction(_ input: Tensor) -> Tensor {
    Functional.linear(input, weight: weight, bias: bias)
  }
}
