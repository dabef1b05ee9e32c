import Detection
import Foundation
import Torch
import TorchNN

/// RetinaNet and DSA-RetinaNet (see `RetinaNetConfig`). Keys as mmdetection's (and the DSA
/// authors' fork): `backbone.*` (torchvision's ResNet names), `neck.*`, `bbox_head.*`;
/// torchvision's checkpoints are renamed on import.
public final class RetinaNetModel: Module {
  public let config: RetinaNetConfig
  public let kind: ModelKind
  let backbone: ResNet
  let neck: RetinaNetNeck
  let head: RetinaNetHead
  /// detectron2's moving average of the positives per batch (with `lossNormalization` `.movingAverage`).
  let lossNormalizer: Tensor?

  /// `kind`: `.retinaNet` or `.dsaRetinaNet`, the family the command line names (the config decides the model).
  public init(config: RetinaNetConfig, kind: ModelKind = .retinaNet) throws {
    try config.validate()
    self.config = config
    self.kind = kind
    backbone = config.backbone.makeResNet(
      normalizationEpsilon: config.batchNormEpsilon, frozenNormalizationTrainsAffine: config.frozenBatchNormTrainsAffine)
    // Each library's ResNet as it starts without pretrained weights: mmdet zero-initializes the
    // residual branches, torchvision does not.
    if config.anchors.convention == .mmdet { backbone.zeroInitializeResidualBranches() }
    neck = RetinaNetNeck(config: config)
    head = RetinaNetHead(config: config)
    lossNormalizer = config.lossNormalization == .movingAverage ? Tensor.full([], 100.0) : nil
    super.init()
    registerModule("backbone", backbone)
    registerModule("neck", neck)
    registerModule("bbox_head", head)
    if let lossNormalizer { _ = registerBuffer("loss_normalizer", lossNormalizer) }
  }

  /// Each level's features and raw outputs for `images [batch, 3, H, W]`.
  public func callAsFunction(images: Tensor) -> [RetinaNetLevelOutput] { headOutputs(pyramid(images)) }

  /// The backbone and the pyramid: each level's (classification, localization) features.
  func pyramid(_ images: Tensor) -> [LevelFeatures] { neck(backbone(images, stagesOut: [2, 3, 4])) }

  /// The head on every level.
  func headOutputs(_ features: [LevelFeatures]) -> [RetinaNetLevelOutput] {
    features.map { level in
      let (logits, deltas, confidence) = head(level)
      return RetinaNetLevelOutput(features: level, logits: logits, deltas: deltas, confidence: confidence)
    }
  }

  /// Every level's anchors `[h·w·A, 4]` (corner boxes in pixels of the padded batch) for `levels`.
  func anchors(for levels: [RetinaNetLevelOutput], paddedSize: (height: Int, width: Int)) -> [Tensor] {
    levels.enumerated().map { index, level in
      config.anchors.anchors(
        level: index, featureSize: (level.logits.size(2), level.logits.size(3)), paddedSize: paddedSize, device: level.logits.device)
    }
  }
}

/// One pyramid level's output: the towers' input features, `logits [batch, A·K, H, W]`, `deltas
/// [batch, A·4, H, W]` and, with the object-confidence task, IoU logits `[batch, A, H, W]`.
public struct RetinaNetLevelOutput: @unchecked Sendable {
  public var features: LevelFeatures
  public var logits: Tensor
  public var deltas: Tensor
  public var confidence: Tensor?

  /// The outputs in float32 (under mixed precision the heads hand over bfloat16), for losses and post-processing.
  var inFloat32: RetinaNetLevelOutput {
    var copy = self
    (copy.logits, copy.deltas, copy.confidence) = (logits.to(.float32), deltas.to(.float32), confidence?.to(.float32))
    return copy
  }

  /// Flattened as the anchors are: `[batch, H·W·A, width]` (position-major, anchor-minor).
  static func flatten(_ map: Tensor, width: Int) -> Tensor {
    map.permuted(0, 2, 3, 1).reshaped(map.size(0), -1, width)
  }
}
