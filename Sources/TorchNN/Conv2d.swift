import Torch

/// 2-D convolution over `[batch, inChannels, h, w]`. Keys `weight` `[out, in / groups, kh, kw]`, `bias` `[out]`.
public final class Conv2d: Module, UnaryLayer {
  public let weight: Tensor
  public let bias: Tensor?
  public let stride: (Int, Int)
  public let padding: (Int, Int)
  public let dilation: (Int, Int)
  public let groups: Int

  /// Initialised as PyTorch's `nn.Conv2d`.
  public init(
    _ inChannels: Int, _ outChannels: Int, kernelSize: (Int, Int), stride: (Int, Int) = (1, 1), padding: (Int, Int) = (0, 0),
    dilation: (Int, Int) = (1, 1), groups: Int = 1, bias: Bool = true
  ) {
    precondition(
      inChannels % groups == 0 && outChannels % groups == 0,
      "Conv2d: channels \(inChannels)->\(outChannels) not divisible by \(groups) groups")
    weight = Tensor.empty([outChannels, inChannels / groups, kernelSize.0, kernelSize.1])
    self.bias = bias ? Tensor.empty([outChannels]) : nil
    self.stride = stride
    self.padding = padding
    self.dilation = dilation
    self.groups = groups
    super.init()
    registerParameter("weight", weight)
    if let b = self.bias { registerParameter("bias", b) }
    Initialization.resetLikePyTorch(weight: weight, bias: self.bias)
  }

  /// A square kernel with the same stride, padding and dilation in both dims.
  public convenience init(
    _ inChannels: Int, _ outChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0, dilation: Int = 1, groups: Int = 1,
    bias: Bool = true
  ) {
    self.init(
      inChannels, outChannels, kernelSize: (kernelSize, kernelSize), stride: (stride, stride), padding: (padding, padding),
      dilation: (dilation, dilation), groups: groups, bias: bias)
  }

  public func callAsFunction(_ input: Tensor) -> Tensor {
    Functional.conv2d(input, weight: weight, bias: bias, stride: stride, padding: padding, dilation: dilation, groups: groups)
  }
}
