import Detection

/// DETR (Carion et al., ECCV 2020): architecture and loss settings. Presets follow the released models.
public struct DETRConfig: Codable, Sendable, Equatable {
  public var backbone = BackboneConfig.resNet(.resNet50)
  public var transformer = TransformerSettings(feedForwardDim: 2048, queries: 100)
  /// Object classes; the class head has one more output, "no object".
  public var classCount = 91
  public var learnedPositionEncoding = false
  public var loss = SetLossSettings(classCost: 1, classLossWeight: 1)
  /// Weight of the "no object" class in the cross-entropy.
  public var noObjectWeight = 0.1

  public init() {}

  /// DETR R50 as released (41.5 M parameters with 91 classes).
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
    config.transformer = config.transformer.small(queries: 50)
    return config
  }

  enum CodingKeys: String, CodingKey {
    case backbone, transformer, loss
    case classCount = "class_count"
    case learnedPositionEncoding = "learned_position_encoding"
    case noObjectWeight = "no_object_weight"
  }
}
