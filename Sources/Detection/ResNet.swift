import Torch
import TorchNN

/// A torchvision-style ResNet (v1.5: stride on the 3×3 convolution) with frozen batch norm, as the
/// DETR family uses it. Keys equal torchvision's: `conv1`, `bn1`, `layer{1-4}.{i}.conv{1-3}`,
/// `bn{1-3}`, `downsample.{0,1}`.
public final class ResNet: Module {
  public enum Depth: Int, Sendable, CaseIterable, Codable {
    case resNet18 = 18, resNet34 = 34, resNet50 = 50, resNet101 = 101

    var blocksPerStage: [Int] {
      switch self {
      case .resNet18: [2, 2, 2, 2]
      case .resNet34: [3, 4, 6, 3]
      case .resNet50: [3, 4, 6, 3]
      case .resNet101: [3, 4, 23, 3]
      }
    }

    var usesBottleneck: Bool { self == .resNet50 || self == .resNet101 }

    /// Output channels of stages 1-4 (C2-C5).
    public var stageChannels: [Int] { usesBottleneck ? [256, 512, 1024, 2048] : [64, 128, 256, 512] }
  }

  public let stageChannels: [Int]
  public let conv1: Conv2d
  public let bn1: any UnaryLayer
  public let stages: [ModuleList<ResidualBlock>]

  /// A standard depth. `dilateLastStage`: DC5, the last stage keeps stride 16 with dilation 2.
  public convenience init(depth: Depth, dilateLastStage: Bool = false, frozenNormalization: Bool = true) {
    self.init(
      blocksPerStage: depth.blocksPerStage, stemChannels: 64, stageChannels: depth.stageChannels, bottleneck: depth.usesBottleneck,
      dilateLastStage: dilateLastStage, frozenNormalization: frozenNormalization)
  }

  /// Any widths and depths (small ones keep tests fast); bottleneck blocks are 4× wider at their output.
  /// `frozenNormalization` false uses trainable batch norm, for training a backbone from scratch
  /// (the references always start from ImageNet weights with frozen statistics).
  /// `normalizationEpsilon`: the batch norms' ε (torchvision's COCO detection weights use 0).
  /// `frozenNormalizationTrainsAffine`: frozen statistics with trained scales and shifts (MMDetection's
  /// `norm_eval=True` with `requires_grad=True`) instead of a wholly fixed affine map (torchvision's, DETR's).
  public init(
    blocksPerStage: [Int], stemChannels: Int, stageChannels: [Int], bottleneck: Bool, dilateLastStage: Bool = false,
    frozenNormalization: Bool = true, normalizationEpsilon: Double = 1e-5, frozenNormalizationTrainsAffine: Bool = false
  ) {
    precondition(blocksPerStage.count == 4 && stageChannels.count == 4, "ResNet: four stages")
    self.stageChannels = stageChannels
    conv1 = Conv2d(3, stemChannels, kernelSize: 7, stride: 2, padding: 3, bias: false)
    bn1 = makeNormalization(stemChannels, frozen: frozenNormalization, epsilon: normalizationEpsilon, trainsAffine: frozenNormalizationTrainsAffine)
    var inChannels = stemChannels
    var dilation = 1
    var stages: [ModuleList<ResidualBlock>] = []
    for (index, count) in blocksPerStage.enumerated() {
      let outChannels = stageChannels[index]
      var stride = index == 0 ? 1 : 2
      let previousDilation = dilation
      if dilateLastStage && index == 3 {
        dilation *= stride
        stride = 1
      }
      var blocks: [ResidualBlock] = []
      for block in 0..<count {
        blocks.append(
          ResidualBlock(
            inChannels: block == 0 ? inChannels : outChannels, outChannels: outChannels, stride: block == 0 ? stride : 1,
            dilation: block == 0 ? previousDilation : dilation, bottleneck: bottleneck,
            projectShortcut: block == 0 && (stride != 1 || inChannels != outChannels), frozenNormalization: frozenNormalization,
            normalizationEpsilon: normalizationEpsilon, frozenNormalizationTrainsAffine: frozenNormalizationTrainsAffine))
      }
      inChannels = outChannels
      stages.append(ModuleList(blocks))
    }
    self.stages = stages
    super.init()
    registerModule("conv1", conv1)
    registerModule("bn1", bn1)
    for (index, stage) in stages.enumerated() { registerModule("layer\(index + 1)", stage) }
    // torchvision's ResNet initialization (detectron2's and transformers' too): every convolution He
    // normal on fan out, in module order; normalization at identity. Matters only without pretrained weights.
    for (_, module) in namedModules() {
      if let convolution = module as? Conv2d { Initialization.kaimingNormalFanOut(convolution.weight) }
    }
  }

  /// Feature maps of the requested stages (1-4, i.e. C2-C5) for `images [batch, 3, h, w]`.
  public func callAsFunction(_ images: Tensor, stagesOut: [Int] = [4]) -> [Tensor] {
    var x = reluInPlace(convolveAndNormalize(images, conv1, bn1))
    x = Functional.maxPool2d(x, kernelSize: (3, 3), stride: (2, 2), padding: (1, 1))
    var outputs: [Tensor] = []
    for (index, stage) in stages.enumerated() {
      for block in stage { x = block(x) }
      if stagesOut.contains(index + 1) { outputs.append(x) }
    }
    return outputs
  }

  /// Starts every residual branch at zero (its last normalization's scale 0, so each block begins as
  /// the identity): MMDetection's ResNet default (`zero_init_residual=True`); torchvision's is off.
  public func zeroInitializeResidualBranches() {
    for stage in stages {
      for block in stage {
        guard let last = block.norms.last as? Module, let scale = last.stateDict().first(where: { $0.key == "weight" })?.tensor else { continue }
        Initialization.constant(scale, 0)
      }
    }
  }

  /// Freezes the stem and the first stage, as the DETR recipes train only stages 2-4.
  public func freezeStemAndFirstStage() { freeze(stemAndStages: 1) }

  /// Freezes the stem and the first `stageCount` stages (detectron2's `freeze_at` − 1: detrex's
  /// DINO freezes the stem alone).
  public func freeze(stemAndStages stageCount: Int) {
    conv1.freeze()
    bn1.freeze()
    for stage in stages.prefix(stageCount) { stage.freeze() }
  }
}

/// A residual block: bottleneck (1×1, 3×3, 1×1 with 4× expansion) or basic (two 3×3), with a
/// projection shortcut (`downsample`) when the shape changes.
public final class ResidualBlock: Module, UnaryLayer {
  let convolutions: [Conv2d]
  let norms: [any UnaryLayer]
  /// The projection shortcut as `downsample.0` (1×1 convolution) and `downsample.1` (norm).
  let downsample: (convolution: Conv2d, norm: any UnaryLayer)?
  /// Whether this is a bottleneck block (1×1, 3×3, 1×1 at a quarter of the output width) rather than a basic one.
  public var isBottleneck: Bool { convolutions.count == 3 }

  init(
    inChannels: Int, outChannels: Int, stride: Int, dilation: Int, bottleneck: Bool, projectShortcut: Bool, frozenNormalization: Bool,
    normalizationEpsilon: Double = 1e-5, frozenNormalizationTrainsAffine: Bool = false
  ) {
    let norm = { (channels: Int) in
      makeNormalization(channels, frozen: frozenNormalization, epsilon: normalizationEpsilon, trainsAffine: frozenNormalizationTrainsAffine)
    }
    if bottleneck {
      let width = outChannels / 4
      convolutions = [
        Conv2d(inChannels, width, kernelSize: 1, bias: false),
        Conv2d(width, width, kernelSize: 3, stride: stride, padding: dilation, dilation: dilation, bias: false),
        Conv2d(width, outChannels, kernelSize: 1, bias: false),
      ]
      norms = [norm(width), norm(width), norm(outChannels)]
    } else {
      convolutions = [
        Conv2d(inChannels, outChannels, kernelSize: 3, stride: stride, padding: dilation, dilation: dilation, bias: false),
        Conv2d(outChannels, outChannels, kernelSize: 3, padding: dilation, dilation: dilation, bias: false),
      ]
      norms = [norm(outChannels), norm(outChannels)]
    }
    downsample = projectShortcut ? (Conv2d(inChannels, outChannels, kernelSize: 1, stride: stride, bias: false), norm(outChannels)) : nil
    super.init()
    for (index, (convolution, norm)) in zip(convolutions, norms).enumerated() {
      registerModule("conv\(index + 1)", convolution)
      registerModule("bn\(index + 1)", norm)
    }
    if let downsample { registerModule("downsample", Sequential([downsample.convolution, downsample.norm])) }
  }

  public func callAsFunction(_ input: Tensor) -> Tensor {
    var x = input
    for (index, (convolution, norm)) in zip(convolutions, norms).enumerated() {
      x = convolveAndNormalize(x, convolution, norm)
      if index < convolutions.count - 1 { x = reluInPlace(x) }
    }
    let shortcut = downsample.map { convolveAndNormalize(input, $0.convolution, $0.norm) } ?? input
    x += shortcut
    return reluInPlace(x)
  }
}

/// `norm(convolution(x))`. Frozen batch norm is an affine map per channel, so it is folded into the
/// convolution's weight and bias: one pass over the activations instead of three, the same result up
/// to rounding, and the same gradients (the fold is differentiable).
func convolveAndNormalize(_ x: Tensor, _ convolution: Conv2d, _ norm: any UnaryLayer) -> Tensor {
  guard let frozen = norm as? FrozenBatchNorm2d else { return norm(convolution(x)) }
  let (scale, shift) = frozen.scaleAndShift()
  let weight = convolution.weight * scale.view(-1, 1, 1, 1)
  let bias = convolution.bias.map { $0 * scale + shift } ?? shift
  return Functional.conv2d(
    x, weight: weight, bias: bias, stride: convolution.stride, padding: convolution.padding, dilation: convolution.dilation,
    groups: convolution.groups)
}

/// ReLU written into `x`, which must be a fresh tensor (a layer's new output that nothing else
/// reads), as torchvision's `ReLU(inplace=True)`: one allocation less per call. Autograd allows it
/// because the ops producing such tensors (convolution, batch norm, linear) do not keep their
/// output for the backward pass, and it raises if one ever did.
public func reluInPlace(_ x: Tensor) -> Tensor {
  x.clamp(min: 0)
  return x
}

/// Frozen batch norm (pretrained statistics) or trainable batch norm.
private func makeNormalization(_ channels: Int, frozen: Bool, epsilon: Double, trainsAffine: Bool) -> any UnaryLayer {
  frozen ? FrozenBatchNorm2d(channels, epsilon: epsilon, trainsAffine: trainsAffine) : BatchNorm2d(channels, epsilon: epsilon)
}
