import Torch

/// Layer normalization over the trailing `normalizedShape` dims. Keys `weight`, `bias`.
public final class LayerNorm: Module, UnaryLayer {
  public let weight: Tensor?
  public let bias: Tensor?
  public let normalizedShape: [Int]
  public let epsilon: Double

  public init(_ normalizedShape: [Int], epsilon: Double = 1e-5, elementwiseAffine: Bool = true) {
    self.normalizedShape = normalizedShape
    self.epsilon = epsilon
    weight = elementwiseAffine ? Tensor.ones(normalizedShape) : nil
    bias = elementwiseAffine ? Tensor.zeros(normalizedShape) : nil
    super.init()
    if let weight { registerParameter("weight", weight) }
    if let bias { registerParameter("bias", bias) }
  }

  public convenience init(_ features: Int, epsilon: Double = 1e-5) {
    self.init([features], epsilon: epsilon)
  }

  public func callAsFunction(_ input: Tensor) -> Tensor {
    Functional.layerNorm(input, normalizedShape: normalizedShape, weight: weight, bias: bias, epsilon: epsilon)
  }
}

/// Group normalization over `[batch, channels, ...]`. Keys `weight`, `bias`.
public final class GroupNorm: Module, UnaryLayer {
  public let weight: Tensor
  public let bias: Tensor
  public let groups: Int
  public let epsilon: Double

  public init(groups: Int, channels: Int, epsilon: Double = 1e-5) {
    precondition(channels % groups == 0, "GroupNorm: \(channels) channels not divisible by \(groups) groups")
    self.groups = groups
    self.epsilon = epsilon
    weight = Tensor.ones([channels])
    bias = Tensor.zeros([channels])
    super.init()
    registerParameter("weight", weight)
    registerParameter("bias", bias)
  }

  public func callAsFunction(_ input: Tensor) -> Tensor {
    Functional.groupNorm(input, groups: groups, weight: weight, bias: bias, epsilon: epsilon)
  }
}

/// Batch normalization over dim 1 of `[batch, channels, h, w]`. Keys `weight`, `bias`,
/// `running_mean`, `running_var`, `num_batches_tracked` (as PyTorch's `nn.BatchNorm2d`).
public final class BatchNorm2d: Module, UnaryLayer {
  public let weight: Tensor
  public let bias: Tensor
  public let runningMean: Tensor
  public let runningVariance: Tensor
  public let batchesTracked: Tensor
  public let momentum: Double
  public let epsilon: Double

  public init(_ channels: Int, epsilon: Double = 1e-5, momentum: Double = 0.1) {
    self.epsilon = epsilon
    self.momentum = momentum
    weight = Tensor.ones([channels])
    bias = Tensor.zeros([channels])
    runningMean = Tensor.zeros([channels])
    runningVariance = Tensor.ones([channels])
    batchesTracked = Tensor.zeros([], dtype: .int64)
    super.init()
    registerParameter("weight", weight)
    registerParameter("bias", bias)
    registerBuffer("running_mean", runningMean)
    registerBuffer("running_var", runningVariance)
    registerBuffer("num_batches_tracked", batchesTracked)
  }

  public func callAsFunction(_ input: Tensor) -> Tensor {
    if isTraining { withNoGrad { batchesTracked += 1 } }
    return Functional.batchNorm(
      input, runningMean: runningMean, runningVariance: runningVariance, weight: weight, bias: bias, training: isTraining,
      momentum: momentum, epsilon: epsilon)
  }
}

/// Batch normalization with fixed statistics and affine parameters, all buffers (never trained),
/// as DETR's backbones use. Keys `weight`, `bias`, `running_mean`, `running_var`.
///
/// Computes `x * scale + shift` with `scale = weight * rsqrt(running_var + eps)` and
/// `shift = bias - running_mean * scale`, in that order, as the reference does (eps 1e-5).
public final class FrozenBatchNorm2d: Module, UnaryLayer {
  public let weight: Tensor
  public let bias: Tensor
  public let runningMean: Tensor
  public let runningVariance: Tensor
  public let epsilon: Double

  /// `trainsAffine`: the scale and shift are parameters (trained, statistics still fixed: MMDetection's
  /// `norm_eval` batch norm) rather than buffers; the state-dict keys are the same.
  public init(_ channels: Int, epsilon: Double = 1e-5, trainsAffine: Bool = false) {
    self.epsilon = epsilon
    weight = Tensor.ones([channels])
    bias = Tensor.zeros([channels])
    runningMean = Tensor.zeros([channels])
    runningVariance = Tensor.ones([channels])
    super.init()
    if trainsAffine {
      registerParameter("weight", weight)
      registerParameter("bias", bias)
    } else {
      registerBuffer("weight", weight)
      registerBuffer("bias", bias)
    }
    registerBuffer("running_mean", runningMean)
    registerBuffer("running_var", runningVariance)
  }

  public func callAsFunction(_ input: Tensor) -> Tensor {
    let (scale, shift) = scaleAndShift()
    return input * scale.view(1, -1, 1, 1) + shift.view(1, -1, 1, 1)
  }

  /// The per-channel affine map this layer applies: `input * scale + shift`, both `[channels]`.
  public func scaleAndShift() -> (scale: Tensor, shift: Tensor) {
    let scale = weight * (runningVariance + epsilon).rsqrt()
    return (scale, bias - runningMean * scale)
  }
}
