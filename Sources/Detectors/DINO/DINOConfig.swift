import Detection

/// DINO (Zhang et al., ICLR 2023) as detrex implements it: a ChannelMapper neck over C3–C5 plus
/// extra levels, a deformable encoder, mixed query selection (positions from the top-k encoder
/// proposals, learned content), contrastive denoising queries in training, a decoder with
/// look-forward-twice box refinement, and separate heads per decoder layer.
public struct DINOConfig: Codable, Sendable, Equatable {
  public var backbone = BackboneConfig.resNet(.resNet50)
  /// Backbone stages fed to the neck (1 = C2 ... 4 = C5); further levels come from stride-2
  /// convolutions, the first on the last stage's raw map.
  public var backboneStages = [2, 3, 4]
  public var featureLevels = 4
  public var transformer = TransformerSettings(feedForwardDim: 2048, dropout: 0, queries: 900)
  public var encoderPoints = 4
  public var decoderPoints = 4
  public var classCount = 80
  /// Denoising queries per image before they are split into groups (`dn_number`): each group holds
  /// a positive and a negative copy of every ground-truth box; 0 turns denoising off.
  public var denoisingQueries = 100
  /// Twice the probability that a denoising query's label is replaced by a random class.
  public var labelNoiseRatio = 0.5
  /// Box corner jitter as a fraction of half the box size (positives in [0, 1), negatives in [1, 2)).
  public var boxNoiseScale = 1.0
  /// The sine position encoding: temperature 10000 and offset −0.5 in detrex's 12-epoch configs,
  /// 20 and 0 (DAB-DETR's) in the 24- and 36-epoch ones.
  public var positionTemperature = 10000.0
  public var positionOffset = -0.5
  /// Layer l's boxes are refined from layer l−1's undetached boxes (look forward twice); off, from the detached ones.
  public var lookForwardTwice = true
  /// Detections kept per image: the best (query, class) pairs (`select_box_nums_for_evaluation`).
  public var detectionsPerImage = 300
  /// Matching costs 2 / 5 / 2, loss weights 1 / 5 / 2 for every term (matching, auxiliary,
  /// encoder proposals and denoising alike).
  public var loss = SetLossSettings(classCost: 2, classLossWeight: 1)
  public var focalAlpha = 0.25

  public init() {}

  /// detrex `dino_r50_4scale_12ep`: R50, 4 levels (strides 8–64), 900 queries, 100 denoising
  /// queries; 49.2 AP on COCO val2017 after 12 epochs (detrex's model zoo; the paper: 49.0).
  public static let r50FourScale = DINOConfig()

  /// detrex `dino_r50_4scale_24ep`: the same model with DAB-DETR's position encoding (temperature
  /// 20, offset 0); 50.6 AP after 24 epochs (detrex's model zoo).
  public static var r50FourScaleLongSchedule: DINOConfig {
    var config = DINOConfig()
    config.positionTemperature = 20
    config.positionOffset = 0
    return config
  }

  /// detrex `dino_r50_5scale_12ep`: C2–C5 plus one extra level (strides 4–64); 49.6 AP after 12 epochs (detrex's model zoo).
  public static var r50FiveScale: DINOConfig {
    var config = DINOConfig()
    config.backboneStages = [1, 2, 3, 4]
    config.featureLevels = 5
    return config
  }

  /// The small model for the built-in data, sized like the small Deformable DETR: a ResNet of one
  /// basic block per stage (32–256 channels, trainable batch norm), 3 levels, 128 wide, 4 heads,
  /// 2 encoder and 3 decoder layers, FFN 256, 30 queries, 30 denoising queries, 100 detections.
  public static var small: DINOConfig {
    var config = DINOConfig()
    config.backbone = BackboneConfig(
      blocksPerStage: [1, 1, 1, 1], stemChannels: 32, stageChannels: [32, 64, 128, 256], bottleneck: false, frozenNormalization: false)
    config.featureLevels = 3
    config.transformer = TransformerSettings(
      hiddenDim: 128, heads: 4, encoderLayers: 2, decoderLayers: 3, feedForwardDim: 256, dropout: 0, queries: 30)
    config.denoisingQueries = 30
    config.detectionsPerImage = 100
    return config
  }

  enum CodingKeys: String, CodingKey {
    case backbone, transformer, loss
    case backboneStages = "backbone_stages"
    case featureLevels = "feature_levels"
    case encoderPoints = "encoder_points"
    case decoderPoints = "decoder_points"
    case classCount = "class_count"
    case denoisingQueries = "denoising_queries"
    case labelNoiseRatio = "label_noise_ratio"
    case boxNoiseScale = "box_noise_scale"
    case positionTemperature = "position_temperature"
    case positionOffset = "position_offset"
    case lookForwardTwice = "look_forward_twice"
    case detectionsPerImage = "detections_per_image"
    case focalAlpha = "focal_alpha"
  }
}
