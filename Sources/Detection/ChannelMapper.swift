import Torch
import TorchNN

/// detrex's ChannelMapper neck (as in DINO and Focus-DETR): a convolution and group norm (32
/// groups, no activation) per backbone map to a common width, and extra levels made by 3×3
/// stride-2 convolutions, the first on the last backbone map itself, later ones on the previous
/// extra level. Keys `convs.{i}.conv`, `convs.{i}.norm`, `extra_convs.{i}.conv`, `extra_convs.{i}.norm`.
public final class ChannelMapper: Module {
  let convolutions: [(convolution: Conv2d, norm: GroupNorm)]
  let extraConvolutions: [(convolution: Conv2d, norm: GroupNorm)]

  /// `inputChannels`: channels of each backbone map fed in; `levels` ≥ their count.
  public init(inputChannels: [Int], outputChannels: Int, levels: Int, kernelSize: Int = 1, groups: Int = 32) {
    precondition(levels >= inputChannels.count, "ChannelMapper: fewer levels than inputs")
    func block(_ input: Int, kernel: Int, stride: Int) -> (Conv2d, GroupNorm) {
      let convolution = Conv2d(input, outputChannels, kernelSize: kernel, stride: stride, padding: (kernel - 1) / 2)
      Initialization.xavierUniform(convolution.weight)
      Initialization.constant(convolution.bias!, 0)
      return (convolution, GroupNorm(groups: groups, channels: outputChannels))
    }
    convolutions = inputChannels.map { block($0, kernel: kernelSize, stride: 1) }
    extraConvolutions = (inputChannels.count..<levels).map { level in
      block(level == inputChannels.count ? inputChannels.last! : outputChannels, kernel: 3, stride: 2)
    }
    super.init()
    for (name, blocks) in [("convs", convolutions), ("extra_convs", extraConvolutions)] {
      for (index, (convolution, norm)) in blocks.enumerated() {
        registerModule(atPath: "\(name).\(index).conv", convolution)
        registerModule(atPath: "\(name).\(index).norm", norm)
      }
    }
  }

  /// `features`: the backbone maps `[batch, C_i, H_i, W_i]`, finest first → one map per level, `[batch, out, H_l, W_l]`.
  public func callAsFunction(_ features: [Tensor]) -> [Tensor] {
    precondition(features.count == convolutions.count, "ChannelMapper: \(features.count) maps for \(convolutions.count) inputs")
    var outputs = zip(features, convolutions).map { feature, block in block.norm(block.convolution(feature)) }
    for (index, block) in extraConvolutions.enumerated() {
      outputs.append(block.norm(block.convolution(index == 0 ? features.last! : outputs.last!)))
    }
    return outputs
  }
}
