import Detection

/// Deformable DETR (Zhu et al., ICLR 2021): multi-scale deformable attention over C3–C5 plus extra
/// levels, with optional iterative box refinement and two-stage proposals. Presets follow the paper's variants.
public struct DeformableDETRConfig: Codable, Sendable, Equatable {
  public var backbone = BackboneConfig.resNet(.resNet50)
  /// Backbone stages used (2 = C3, 3 = C4, 4 = C5); further levels are made by stride-2 convolutions.
  public var backboneStages = [2, 3, 4]
  public var featureLevels = 4
  public var transformer = TransformerSettings(feedForwardDim: 1024, queries: 300)
  public var encoderPoints = 4
  public var decoderPoints = 4
  public var classCount = 91
  public var boxRefinement = false
  public var twoStage = false
  public var loss = SetLossSettings(classCost: 2, classLossWeight: 2)
  public var focalAlpha = 0.25

  public init() {}

  /// Deformable DETR R50, multi-scale (C3–C5 + 1 extra level), 40.1 M parameters.
  public static let r50 = DeformableDETRConfig()

  /// Single-scale: C5 only (34.1 M).
  public static var r50SingleScale: DeformableDETRConfig {
    var config = DeformableDETRConfig()
    config.backboneStages = [4]
    config.featureLevels = 1
    return config
  }

  /// With iterative bounding-box refinement.
  public static var r50BoxRefinement: DeformableDETRConfig {
    var config = DeformableDETRConfig()
    config.boxRefinement = true
    return config
  }

  /// Two-stage with box refinement (the paper's best; 41.2 M).
  public static var r50TwoStage: DeformableDETRConfig {
    var config = r50BoxRefinement
    config.twoStage = true
    return config
  }

  /// The small model of the built-in demo, sized to train from scratch in minutes on two CPU cores:
  /// a ResNet of 1 basic block per stage (32-256 channels) with trainable batch norm, 3 levels
  /// (strides 8, 16, 32), 128 wide, 4 heads, 2 encoder and 3 decoder layers, FFN 256, no dropout,
  /// 30 queries, box refinement and two-stage.
  public static var small: DeformableDETRConfig {
    var config = DeformableDETRConfig()
    config.backbone = BackboneConfig(
      blocksPerStage: [1, 1, 1, 1], stemChannels: 32, stageChannels: [32, 64, 128, 256], bottleneck: false, frozenNormalization: false)
    config.backboneStages = [2, 3, 4]
    config.featureLevels = 3
    config.transformer = TransformerSettings(
      hiddenDim: 128, heads: 4, encoderLayers: 2, decoderLayers: 3, feedForwardDim: 256, dropout: 0, queries: 30)
    config.boxRefinement = true
    config.twoStage = true
    return config
  }

  enum CodingKeys: String, CodingKey {
    case backbone, transformer, loss
    case backboneStages = "backbone_stages"
    case featureLevels = "feature_levels"
    case encoderPoints = "encoder_points"
    case decoderPoints = "decoder_points"
    case classCount = "class_count"
    case boxRefinement = "box_refinement"
    case twoStage = "two_stage"
    case focalAlpha = "focal_alpha"
  }
}
