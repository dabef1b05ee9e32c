import Detection
import Foundation
import Torch
import TorchNN

/// A convolution under mmdet's `ConvModule` key (`conv`).
final class ConvModule: Module, UnaryLayer {
  let conv: Conv2d

  init(_ conv: Conv2d) {
    self.conv = conv
    super.init()
    registerModule("conv", conv)
  }

  func callAsFunction(_ input: Tensor) -> Tensor { conv(input) }
}

/// RetinaNet's feature pyramid with DSA's branches: laterals (1×1) on C3–C5, the top-down sum with
/// nearest upsampling, 3×3 outputs P3–P5, P6 a 3×3 stride-2 convolution of C5 (or its lateral, or P5), P7 one of P6
/// (after a ReLU or not); then at each level a (classification, localization) pair of features: the
/// level's two decoupled self-attention branches where DSA is on, the level itself twice elsewhere.
/// P7 is computed from P6 before its attention, as the authors' code does. Keys as mmdet's:
/// `lateral_convs.{0-2}.conv`, `fpn_convs.{0-4}.conv`, `fpn_selfatt.{i}` (two per attention level, in
/// level order, classification first).
final class RetinaNetNeck: Module {
  let laterals: ModuleList<ConvModule>
  let outputs: ModuleList<ConvModule>
  let attention: ModuleList<DecoupledSelfAttention>
  /// The index in `attention` of each attention level's classification branch.
  let attentionIndex: [Int: Int]
  let extraLevelsInput: RetinaNetConfig.ExtraLevelsInput
  let reluBeforeP7: Bool

  init(config: RetinaNetConfig) {
    let c = config.channels
    let inputs = Array(config.backbone.stageChannels[1...3])
    laterals = ModuleList(inputs.map { ConvModule(Conv2d($0, c, kernelSize: 1)) })
    var convolutions = inputs.map { _ in ConvModule(Conv2d(c, c, kernelSize: 3, padding: 1)) }
    convolutions.append(ConvModule(Conv2d(config.extraLevelsInput == .backbone ? inputs[2] : c, c, kernelSize: 3, stride: 2, padding: 1)))
    convolutions.append(ConvModule(Conv2d(c, c, kernelSize: 3, stride: 2, padding: 1)))
    outputs = ModuleList(convolutions)
    let levels = config.attentionLevels.sorted()
    attentionIndex = Dictionary(uniqueKeysWithValues: levels.enumerated().map { ($1, 2 * $0) })
    attention = ModuleList((0..<(2 * levels.count)).map { _ in DecoupledSelfAttention(channels: c) })
    (extraLevelsInput, reluBeforeP7) = (config.extraLevelsInput, config.reluBeforeP7)
    super.init()
    registerModule("lateral_convs", laterals)
    registerModule("fpn_convs", outputs)
    if !levels.isEmpty { registerModule("fpn_selfatt", attention) }
    // mmdet's FPN: Xavier-uniform; torchvision's (and its LastLevelP6P7): Kaiming-uniform with a = 1.
    for module in Array(laterals) + Array(outputs) {
      if config.anchors.convention == .torchvision {
        Initialization.kaimingUniform(module.conv.weight, a: 1)
      } else {
        Initialization.xavierUniform(module.conv.weight)
      }
      Initialization.constant(module.conv.bias!, 0)
    }
  }

  /// `features`: C3, C4, C5 `[batch, channels, H, W]` → P3–P7 as (classification, localization) pairs.
  func callAsFunction(_ features: [Tensor]) -> [LevelFeatures] {
    var merged = zip(laterals, features).map { $0($1) }
    for index in stride(from: merged.count - 1, to: 0, by: -1) {
      let below = merged[index - 1]
      merged[index - 1] = below + Functional.interpolate(merged[index], size: (below.size(2), below.size(3)), mode: .nearest)
    }
    var levels = zip(outputs.prefix(3), merged).enumerated().map { offset, pair in branches(pair.0(pair.1), level: offset + 3) }
    let p6Input =
      switch extraLevelsInput {
      case .backbone: features[2]
      case .lateral: merged[2]  // the top level's lateral, which the top-down pass leaves as it is
      // P5's localization features: P5 itself without attention there; the authors' code takes its
      // localization branch where P5 has attention.
      case .pyramid: levels[2].localization
      }
    let p6 = outputs[3](p6Input)
    levels.append(branches(p6, level: 6))
    levels.append(branches(outputs[4](reluBeforeP7 ? p6.relu() : p6), level: 7))
    return levels
  }

  /// A level's (classification, localization) features: its two attention branches where DSA is on, the level itself twice elsewhere.
  func branches(_ level: Tensor, level number: Int) -> LevelFeatures {
    guard let index = attentionIndex[number] else { return LevelFeatures(classification: level, localization: level) }
    return LevelFeatures(classification: attention[index](level), localization: attention[index + 1](level))
  }
}

/// A pyramid level's features for the two towers, `[batch, channels, H, W]` each.
public struct LevelFeatures: @unchecked Sendable {
  public var classification: Tensor
  public var localization: Tensor
}
