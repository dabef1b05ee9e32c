import Detection

/// Conditional DETR (Meng et al., ICCV 2021): DETR's encoder with a conditional cross-attention
/// decoder, sigmoid focal classification and 300 queries. Presets follow the released models.
public struct ConditionalDETRConfig: Codable, Sendable, Equatable {
  public var backbone = BackboneConfig.resNet(.resNet50)
  public var transformer = TransformerSettings(feedForwardDim: 2048, queries: 300)
  /// Object classes (sigmoid outputs, no "no object" class).
  public var classCount = 91
  public var learnedPositionEncoding = false
  public var loss = SetLossSettings(classCost: 2, classLossWeight: 2)
  public var focalAlpha = 0.25

  public init() {}

  /// Conditional DETR R50 as released (43.4 M parameters with 91 classes).
  public static let r50 = ConditionalDETRConfig()

  /// A small model for quick CPU experiments: ResNet-18, 128 wide, 3 + 3 layers, 100 queries.
  public static var small: ConditionalDETRConfig {
    var config = ConditionalDETRConfig()
    config.backbone = .resNet(.resNet18)
    config.transformer = config.transformer.small(queries: 100)
    return config
  }

  enum CodingKeys: String, CodingKey {
    case backbone, transformer, loss
    case classCount = "class_count"
    case learnedPositionEncoding = "learned_position_encoding"
    case focalAlpha = "focal_alpha"
  }
}
