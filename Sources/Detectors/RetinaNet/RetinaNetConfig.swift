import Detection

/// RetinaNet (Lin, Goyal, Girshick, He, Dollár, ICCV 2017) and DSA-RetinaNet (Wu, Chen, Ma, Zhang,
/// Li, arXiv 2012.07630): a ResNet, a feature pyramid P3–P7, 9 anchors per location, two 4-conv
/// towers shared across levels, sigmoid focal loss on every anchor, NMS. DSA adds two decoupled
/// self-attention branches per level between the pyramid and the towers, and an object-confidence
/// (IoU) output on the classification tower.
public struct RetinaNetConfig: Codable, Sendable, Equatable {
  /// How the training loss is normalized.
  public enum LossNormalization: String, Codable, Sendable, CaseIterable {
    /// Sum over the batch / Σ images max(positives, 1) (mmdet).
    case batch
    /// Per image, sum / max(positives, 1), then the mean over images (torchvision).
    case perImage = "per-image"
    /// Sum over the batch / a moving average of the batch's positives (momentum 0.9, starting at 100;
    /// detectron2), kept in the checkpoint as `loss_normalizer`.
    case movingAverage = "moving-average"
  }

  /// The box regression loss on positive anchors.
  public enum BoxLoss: String, Codable, Sendable, CaseIterable {
    /// L1 on the deltas (mmdet, torchvision v1, detectron2).
    case l1
    /// 1 − GIoU on the decoded boxes (torchvision v2).
    case generalizedIoU = "giou"
  }

  /// How detections are chosen before NMS.
  public enum CandidateSelection: String, Codable, Sendable, CaseIterable {
    /// Per level, the `candidatesPerLevel` anchors of best (any-class) score, then every (anchor, class)
    /// above the threshold (mmdet).
    case anchors
    /// Per level, (anchor, class) pairs above the threshold, the best `candidatesPerLevel` of them (torchvision).
    case pairs
  }

  /// What the first extra pyramid level (P6, a 3×3 stride-2 convolution) is computed from: mmdet's
  /// FPN `add_extra_convs` values.
  public enum ExtraLevelsInput: String, Codable, Sendable, CaseIterable {
    /// The backbone's last stage C5 (mmdet's RetinaNet, the DSA code, detectron2).
    case backbone = "on_input"
    /// The lateral 1×1 convolution of C5, before its 3×3 output convolution.
    case lateral = "on_lateral"
    /// The pyramid's P5 (torchvision v1).
    case pyramid = "on_output"
  }

  public var backbone = BackboneConfig.resNet(.resNet50)
  /// Object classes (sigmoid outputs, no background class).
  public var classCount = 80
  /// Channels of the pyramid and the towers.
  public var channels = 256
  /// Convolutions per tower.
  public var towerConvolutions = 4
  public var anchors = AnchorGenerator(convention: .mmdet)
  /// What P6 is computed from (C5, C5's lateral or P5).
  public var extraLevelsInput = ExtraLevelsInput.backbone
  /// ReLU on P6 before the P7 convolution (torchvision, detectron2; not mmdet).
  public var reluBeforeP7 = false
  /// The ε of the backbone's frozen batch norm (0 for torchvision's COCO v1 weights).
  public var batchNormEpsilon = 1e-5
  /// Whether training moves the frozen batch norm's scales and shifts (its statistics stay fixed):
  /// MMDetection's ResNet (`norm_eval=True`, `requires_grad=True`), the DSA code's; torchvision's
  /// `FrozenBatchNorm2d` fixes them too (false). A config without the field takes true unless its
  /// anchors follow torchvision.
  public var frozenBatchNormTrainsAffine = true
  public var assigner = MaxIoUAssigner(lowQualityMatch: .boxInOrder)
  public var boxCoder = BoxCoder(clampsBothSides: true)
  public var focalAlpha = 0.25
  public var focalGamma = 2.0
  public var boxLoss = BoxLoss.l1
  public var lossNormalization = LossNormalization.batch
  public var candidateSelection = CandidateSelection.anchors
  public var candidatesPerLevel = 1000
  public var scoreThreshold = 0.05
  public var nmsThreshold = 0.5
  public var detectionsPerImage = 100

  /// Pyramid levels (3–7) with the two decoupled self-attention branches (DSA): P4–P7 in the
  /// authors' code; empty for plain RetinaNet. P3 is possible, at an attention map of (H/8 · W/8)²
  /// values per image and branch (1.08 GB at 800×1333 in float32).
  public var attentionLevels: [Int] = []
  /// The object-confidence output: a per-anchor IoU logit on the classification tower, trained with
  /// BCE against the IoU of the decoded box with its target, and fused into the score as
  /// `p^(1−α) · σ(iou)^α`.
  public var objectConfidence = false
  /// α of the score fusion (0.7).
  public var confidenceExponent = 0.7
  /// The authors' code multiplies by the IoU factor only on levels with more than
  /// `candidatesPerLevel` anchors (the others keep `p^(1−α)`); true reproduces it.
  public var legacyScoreFusion = false
  /// The authors' code lets the confidence loss's gradient reach the box branch through its IoU
  /// target; false (the default) detaches the target.
  public var gradientThroughIoUTarget = false

  public init() {}

  /// RetinaNet R50 as mmdetection 2.x builds it (the base of the DSA code): P6 from C5, no ReLU
  /// before P7, float anchors, batch-normalized L1 + focal, anchors-first candidates, 100 detections.
  public static let r50 = RetinaNetConfig()

  /// RetinaNet R50 as torchvision's `retinanet_resnet50_fpn` (v1): 91 classes (COCO ids), P6 from
  /// P5 with ReLU before P7, rounded anchors, per-image loss normalization, pair candidates, 300
  /// detections; its COCO weights use frozen batch norm with ε = 0.
  public static var r50Torchvision: RetinaNetConfig {
    var config = RetinaNetConfig()
    config.classCount = 91
    config.anchors = AnchorGenerator(convention: .torchvision)
    (config.extraLevelsInput, config.reluBeforeP7, config.batchNormEpsilon) = (.pyramid, true, 0)
    config.frozenBatchNormTrainsAffine = false
    config.assigner = MaxIoUAssigner(lowQualityMatch: .anchorsBestBox)
    config.boxCoder = BoxCoder(clampsBothSides: false)
    (config.lossNormalization, config.candidateSelection, config.detectionsPerImage) = (.perImage, .pairs, 300)
    return config
  }

  /// DSA on mmdet's RetinaNet R50, as the authors' code: attention on P4–P7.
  public static var r50DSA: RetinaNetConfig {
    var config = RetinaNetConfig.r50
    config.attentionLevels = [4, 5, 6, 7]
    return config
  }

  /// DSA with the object-confidence task.
  public static var r50DSAConfidence: RetinaNetConfig {
    var config = RetinaNetConfig.r50DSA
    config.objectConfidence = true
    return config
  }

  /// A small model for CPU experiments: ResNet-18, 64 channels, 2 convolutions per tower.
  public static var small: RetinaNetConfig {
    var config = RetinaNetConfig.r50
    config.backbone = .resNet(.resNet18)
    (config.channels, config.towerConvolutions) = (64, 2)
    return config
  }

  /// The small model with DSA on P4–P7.
  public static var smallDSA: RetinaNetConfig {
    var config = RetinaNetConfig.small
    config.attentionLevels = [4, 5, 6, 7]
    return config
  }

  /// Throws a `ConfigError` naming the field when the config cannot work.
  public func validate() throws {
    guard classCount >= 1 else { throw ConfigError("class_count must be positive, got \(classCount)") }
    guard channels >= 8, channels % 8 == 0 else {
      throw ConfigError("channels must be a positive multiple of 8 (the attention's query width is channels / 8), got \(channels)")
    }
    guard towerConvolutions >= 0 else { throw ConfigError("tower_convolutions must be 0 or more, got \(towerConvolutions)") }
    guard anchors.strides.count == 5, anchors.sizes.count == 5 else {
      throw ConfigError("anchors must describe the five levels P3–P7 (strides and sizes), got \(anchors.strides.count)")
    }
    guard !anchors.scales.isEmpty, !anchors.ratios.isEmpty, anchors.ratios.allSatisfy({ $0 > 0 }), anchors.scales.allSatisfy({ $0 > 0 })
    else { throw ConfigError("anchors.scales and anchors.ratios must be non-empty and positive") }
    guard attentionLevels.allSatisfy({ (3...7).contains($0) }), Set(attentionLevels).count == attentionLevels.count else {
      throw ConfigError("attention_levels must be distinct levels among 3–7, got \(attentionLevels)")
    }
    guard negativeThresholdIsSane else {
      throw ConfigError(
        "assigner.negative_threshold (\(assigner.negativeThreshold)) must not exceed assigner.positive_threshold (\(assigner.positiveThreshold))")
    }
    guard (0...1).contains(scoreThreshold), (0...1).contains(nmsThreshold), (0...1).contains(confidenceExponent) else {
      throw ConfigError("score_threshold, nms_threshold and confidence_exponent must lie in [0, 1]")
    }
    guard candidatesPerLevel >= 1, detectionsPerImage >= 1 else {
      throw ConfigError("candidates_per_level and detections_per_image must be positive")
    }
    if !objectConfidence, legacyScoreFusion || gradientThroughIoUTarget {
      throw ConfigError("legacy_score_fusion and gradient_through_iou_target change the object-confidence task; set object_confidence to true")
    }
  }

  private var negativeThresholdIsSane: Bool {
    assigner.negativeThreshold <= assigner.positiveThreshold && assigner.negativeThreshold >= 0 && assigner.positiveThreshold <= 1
  }

  /// Decodes every field; `add_extra_convs` may instead be given as the boolean `p6_from_p5` of
  /// checkpoints written before it existed (true: `on_output`, false: `on_input`).
  public init(from decoder: Decoder) throws {
    let container = try decoder.container(keyedBy: CodingKeys.self)
    backbone = try container.decode(BackboneConfig.self, forKey: .backbone)
    classCount = try container.decode(Int.self, forKey: .classCount)
    channels = try container.decode(Int.self, forKey: .channels)
    towerConvolutions = try container.decode(Int.self, forKey: .towerConvolutions)
    anchors = try container.decode(AnchorGenerator.self, forKey: .anchors)
    if let input = try container.decodeIfPresent(ExtraLevelsInput.self, forKey: .extraLevelsInput) {
      extraLevelsInput = input
    } else {
      let legacy = try decoder.container(keyedBy: LegacyCodingKeys.self)
      extraLevelsInput = try legacy.decode(Bool.self, forKey: .p6FromP5) ? .pyramid : .backbone
    }
    reluBeforeP7 = try container.decode(Bool.self, forKey: .reluBeforeP7)
    batchNormEpsilon = try container.decode(Double.self, forKey: .batchNormEpsilon)
    frozenBatchNormTrainsAffine =
      try container.decodeIfPresent(Bool.self, forKey: .frozenBatchNormTrainsAffine) ?? (anchors.convention != .torchvision)
    assigner = try container.decode(MaxIoUAssigner.self, forKey: .assigner)
    boxCoder = try container.decode(BoxCoder.self, forKey: .boxCoder)
    focalAlpha = try container.decode(Double.self, forKey: .focalAlpha)
    focalGamma = try container.decode(Double.self, forKey: .focalGamma)
    boxLoss = try container.decode(BoxLoss.self, forKey: .boxLoss)
    lossNormalization = try container.decode(LossNormalization.self, forKey: .lossNormalization)
    candidateSelection = try container.decode(CandidateSelection.self, forKey: .candidateSelection)
    candidatesPerLevel = try container.decode(Int.self, forKey: .candidatesPerLevel)
    scoreThreshold = try container.decode(Double.self, forKey: .scoreThreshold)
    nmsThreshold = try container.decode(Double.self, forKey: .nmsThreshold)
    detectionsPerImage = try container.decode(Int.self, forKey: .detectionsPerImage)
    attentionLevels = try container.decode([Int].self, forKey: .attentionLevels)
    objectConfidence = try container.decode(Bool.self, forKey: .objectConfidence)
    confidenceExponent = try container.decode(Double.self, forKey: .confidenceExponent)
    legacyScoreFusion = try container.decode(Bool.self, forKey: .legacyScoreFusion)
    gradientThroughIoUTarget = try container.decode(Bool.self, forKey: .gradientThroughIoUTarget)
  }

  enum LegacyCodingKeys: String, CodingKey {
    case p6FromP5 = "p6_from_p5"
  }

  enum CodingKeys: String, CodingKey {
    case backbone, channels, anchors, assigner
    case classCount = "class_count"
    case towerConvolutions = "tower_convolutions"
    case extraLevelsInput = "add_extra_convs"
    case reluBeforeP7 = "relu_before_p7"
    case batchNormEpsilon = "batch_norm_epsilon"
    case frozenBatchNormTrainsAffine = "frozen_batch_norm_trains_affine"
    case boxCoder = "box_coder"
    case focalAlpha = "focal_alpha"
    case focalGamma = "focal_gamma"
    case boxLoss = "box_loss"
    case lossNormalization = "loss_normalization"
    case candidateSelection = "candidate_selection"
    case candidatesPerLevel = "candidates_per_level"
    case scoreThreshold = "score_threshold"
    case nmsThreshold = "nms_threshold"
    case detectionsPerImage = "detections_per_image"
    case attentionLevels = "attention_levels"
    case objectConfidence = "object_confidence"
    case confidenceExponent = "confidence_exponent"
    case legacyScoreFusion = "legacy_score_fusion"
    case gradientThroughIoUTarget = "gradient_through_iou_target"
  }
}
