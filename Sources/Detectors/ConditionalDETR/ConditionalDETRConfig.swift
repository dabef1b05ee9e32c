import Detection

/// Conditional DETR (Meng et al., ICCV 2021): DETR's encoder with a conditional cross-attention
/// decoder, sigmoid focal classification and 300 queries. Presets follow the released models.
public struct ConditionalDETRConfig: Codable, Sendable, Equatable {
  public var backbone = BackboneConfig.resNet(.resNet50)
  public var hiddenDim = 256
  public var heads = 8
  public var encoderLayers = 6
  public var decoderLayers = 6
  public var feedForwardDim = 2048
  public var dropout = 0.1
  public var queries = 300
  /// Object classes (sigmoid outputs, no "no object" class).
  public var classCount = 91
  public var learnedPositionEncoding = false
  public var auxiliaryLoss = true
  public var classCost = 2.0
  public var boxCost = 5.0
  public var giouCost = 2.0
  public var classLossWeight = 2.0
  public var boxLossWeight = 5.0
  public var giouLossWeight = 2.0
  public var focalAlpha = 0.25

  public init() {}

  /// Conditional DETR R50 as released.
  public static let r50 = ConditionalDETRConfig()

  /// A small model for quick CPU experiments: ResNet-18, 128 wide, 3 + 3 layers, 100 queries.
  public static var small: ConditionalDETRConfig {
    var config = ConditionalDETRConfig()
    config.backbone = .resNet(.resNet18)
    config.hiddenDim = 128
    config.heads = 4
    config.encoderLayers = 3
    config.decoderLayers = 3
    config.feedForwardDim = 512
    config.queries = 100
    return config
  }

  enum CodingKeys: String, CodingKey {
    case backbone
    case hiddenDim = "hidden_dim"
    case heads
    case encoderLayers = "encoder_layers"
    case decoderLayers = "decoder_layers"
    case feedForwardDim = "feed_forward_dim"
    case dropout
    case queries
    case classCount = "class_count"
    case learnedPositionEncoding = "learned_position_encoding"
    case auxiliaryLoss = "auxiliary_loss"
    case classCost = "class_cost"
    case boxCost = "box_cost"
    case giouCost = "giou_cost"
    case classLossWeight = "class_loss_weight"
    case boxLossWeight = "box_loss_weight"
    case giouLossWeight = "giou_loss_weight"
    case focalAlpha = "focal_alpha"
  }
}
