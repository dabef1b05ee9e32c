import Foundation
import Torch

/// Weight initialisation, in place and without recording gradients, drawing from libtorch's
/// default generator (seed it with `Torch.manualSeed`) or the one given. Each scheme consumes
/// random numbers exactly as its `torch.nn.init` counterpart, so the same seed gives the same weights.
public enum Initialization {
  /// (fan in, fan out) as PyTorch computes them: `[out, in, *kernel]`.
  public static func fans(of tensor: Tensor) -> (fanIn: Int, fanOut: Int) {
    let shape = tensor.shape
    precondition(shape.count >= 2, "fan in and fan out need a tensor with at least 2 dims, got \(shape)")
    let receptive = shape.dropFirst(2).reduce(1, *)
    return (shape[1] * receptive, shape[0] * receptive)
  }

  public static func uniform(_ tensor: Tensor, low: Double = 0, high: Double = 1, generator: Generator? = nil) {
    withNoGrad { tensor.uniformFill(low: low, high: high, generator: generator) }
  }

  public static func normal(_ tensor: Tensor, mean: Double = 0, standardDeviation: Double = 1, generator: Generator? = nil) {
    withNoGrad { tensor.normalFill(mean: mean, standardDeviation: standardDeviation, generator: generator) }
  }

  public static func constant(_ tensor: Tensor, _ value: Double) {
    withNoGrad { tensor.fill(with: value) }
  }

  /// Glorot uniform: U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out)).
  public static func xavierUniform(_ tensor: Tensor, gain: Double = 1, generator: Generator? = nil) {
    let (fanIn, fanOut) = fans(of: tensor)
    let bound = gain * Foundation.sqrt(6.0 / Double(fanIn + fanOut))
    uniform(tensor, low: -bound, high: bound, generator: generator)
  }

  /// He uniform for a leaky ReLU of negative slope `a`, on fan in: U(-b, b) with
  /// b = sqrt(2 / (1 + a²)) * sqrt(3 / fan_in). PyTorch's Linear and Conv use a = sqrt(5).
  public static func kaimingUniform(_ tensor: Tensor, a: Double = 0, generator: Generator? = nil) {
    let fanIn = fans(of: tensor).fanIn
    let gain = Foundation.sqrt(2.0 / (1 + a * a))
    let bound = gain * Foundation.sqrt(3.0 / Double(fanIn))
    uniform(tensor, low: -bound, high: bound, generator: generator)
  }

  /// He normal for ReLU networks on fan out: N(0, σ²) with σ = sqrt(2 / fan_out), as
  /// `kaiming_normal_(w, mode="fan_out", nonlinearity="relu")` (torchvision's, detectron2's and
  /// transformers' ResNet convolutions).
  public static func kaimingNormalFanOut(_ tensor: Tensor, generator: Generator? = nil) {
    let fanOut = fans(of: tensor).fanOut
    normal(tensor, standardDeviation: Foundation.sqrt(2.0 / Double(fanOut)), generator: generator)
  }

  /// PyTorch's default for Linear and Conv layers: kaiming uniform (a = sqrt(5)) weights and
  /// U(-1/sqrt(fan_in), 1/sqrt(fan_in)) bias.
  static func resetLikePyTorch(weight: Tensor, bias: Tensor?) {
    kaimingUniform(weight, a: Foundation.sqrt(5.0))
    if let bias {
      let fanIn = fans(of: weight).fanIn
      let bound = fanIn > 0 ? 1 / Foundation.sqrt(Double(fanIn)) : 0
      uniform(bias, low: -bound, high: bound)
    }
  }
}
