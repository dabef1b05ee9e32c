import Torch

/// A module with one tensor in and one out, so layers can be chained in `Sequential`.
public protocol UnaryLayer: Module {
  func callAsFunction(_ input: Tensor) -> Tensor
}

/// Layers applied in order, registered as "0", "1", ..., like PyTorch's `nn.Sequential`.
public final class Sequential: Module, UnaryLayer {
  public let layers: [any UnaryLayer]

  public init(_ layers: [any UnaryLayer]) {
    self.layers = layers
    super.init()
    for (index, layer) in layers.enumerated() { registerModule(String(index), layer) }
  }

  public func callAsFunction(_ input: Tensor) -> Tensor {
    layers.reduce(input) { $1($0) }
  }
}

/// `relu` as a layer (no parameters).
public final class ReLU: Module, UnaryLayer {
  public override init() { super.init() }
  public func callAsFunction(_ input: Tensor) -> Tensor { input.relu() }
}
