import Torch

/// A lookup table: int64 indices `[...]` to rows `[..., dim]`. Key `weight` `[count, dim]`, initialised N(0, 1) as PyTorch.
public final class Embedding: Module {
  public let weight: Tensor

  public init(_ count: Int, _ dim: Int) {
    weight = Tensor.empty([count, dim])
    super.init()
    registerParameter("weight", weight)
    Initialization.normal(weight)
  }

  public func callAsFunction(_ indices: Tensor) -> Tensor {
    Functional.embedding(indices, weight: weight)
  }
}

/// Zeroes elements with probability `probability` in training mode (scaling the rest); identity in evaluation.
public final class Dropout: Module, UnaryLayer {
  public let probability: Double

  public init(_ probability: Double = 0.5) {
    precondition((0...1).contains(probability), "Dropout probability must be in [0, 1], got \(probability)")
    self.probability = probability
    super.init()
  }

  public func callAsFunction(_ input: Tensor) -> Tensor {
    Functional.dropout(input, probability: probability, training: isTraining)
  }
}

/// DETR's multi-layer perceptron: `layers.0 ... layers.{n-1}` Linear layers with ReLU between them.
public final class MLP: Module, UnaryLayer {
  public let layers: ModuleList<Linear>

  public init(inputDim: Int, hiddenDim: Int, outputDim: Int, layerCount: Int) {
    precondition(layerCount >= 1, "MLP needs at least one layer")
    let inputs = [inputDim] + Array(repeating: hiddenDim, count: layerCount - 1)
    let outputs = Array(repeating: hiddenDim, count: layerCount - 1) + [outputDim]
    layers = ModuleList(zip(inputs, outputs).map { Linear($0, $1) })
    super.init()
    registerModule("layers", layers)
  }

  public func callAsFunction(_ input: Tensor) -> Tensor {
    var x = input
    for (index, layer) in layers.enumerated() {
      x = layer(x)
      if index < layers.count - 1 { x = x.relu() }
    }
    return x
  }
}
