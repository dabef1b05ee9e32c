import Detection

/// DETR (Carion et al., ECCV 2020): architecture and loss settings. Presets follow the released models.
public struct DETRConfig: Codable, Sendable, Equatable {
  public var backbone = BackboneConfig.resNet(.resNet50)
  public var hiddenDim = 256
  public var heads = 8
  public var encoderLayers = 6
  public var decoderLayers = 6
  public var feedForwardDim = 2048
  public var dropout = 0.1
  public var queries = 100
  /// Object classes; the class head has one more output, "no object".
  public var classCount = 91
  public var learnedPositionEncoding = false
  public var auxiliaryLoss = true
  public var classCost = 1.0
  public var boxCost = 5.0
  public var giouCost = 2.0
  public var classLossWeight = 1.0
  public var boxLossWeight = 5.0
  public var giouLossWeight = 2.0
  public var noObjectWeight = 0.1

  public init() {}

  /// DETR R50 as released (41.3 M parameters with 91 classes).
  public static let r50 = DETRConfig()

  /// DETR R101.
  public static var r101: DETRConfig {
    var config = DETRConfig()
    config.backbone = .resNet(.resNet101)
    return config
  }

  /// A small model for quick CPU experiments: ResNet-18, 128 wide, 3 + 3 layers, 50 queries.
  public static var small: DETRConfig {
    var config = DETRConfig()
    config.backbone = .resNet(.resNet18)
    config.hiddenDim = 128
    config.heads = 4
    config.encoderLayers = 3
    config.decoderLayers = 3
    config.feedForwardDim = 512
    config.queries = 50
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
    case noObjectWeight = "no_object_weight"
  }
}
