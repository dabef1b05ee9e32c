import Detection

/// SMCA-DETR (Gao et al., ICCV 2021): a DETR whose decoder cross-attention is modulated by a
/// Gaussian-like spatial prior around a centre each query predicts, single scale (DETR's encoder on
/// C5) or multi-scale (the released depthwise-convolution encoder on strides 8-64, scale-selection
/// attention over four key segments). Sigmoid focal classification over DETR's class outputs (the
/// last, "no object", is never a target), 300 queries. Presets follow the official models.
public struct SMCAConfig: Codable, Sendable, Equatable {
  public var backbone = BackboneConfig.resNet(.resNet50)
  public var encoder = SMCAEncoder.singleScale
  public var transformer = TransformerSettings(feedForwardDim: 2048, queries: 300)
  /// The depthwise convolutions' kernel of the multi-scale encoder (7 in the released model).
  public var encoderKernelSize = 7
  /// The paper's multi-scale encoder: which layers attend within each map and which across all three.
  public var encoderLayout: [SMCAEncoderLayerKind] = [.intraScale, .intraScale, .multiScale, .intraScale, .intraScale]
  /// Object classes; the class head has one more output, as in the official model.
  public var classCount = 91
  /// How each head's Gaussian is scaled (`--dynamic_scale` of the official code).
  public var scale = SpatialScale.perAxis
  /// β: the log-weights are −distance / β (`--smooth`).
  public var smoothing = 8.0
  public var loss = SetLossSettings(classCost: 2, classLossWeight: 2)
  public var focalAlpha = 0.25

  public init() {}

  /// SMCA-DETR R50 single scale as released (type3 scales, β 8; 41.0 AP at 50 epochs).
  public static let r50 = SMCAConfig()

  /// The released multi-scale SMCA-DETR R50 (`transformer_44_dot_4.py` of the official zip: 6 encoder
  /// layers, feed-forward 1024, kernel 7; 44.4 AP at 50 epochs).
  public static var r50MultiScale: SMCAConfig {
    var config = SMCAConfig()
    config.encoder = .depthwiseMultiScale
    config.transformer.feedForwardDim = 1024
    return config
  }

  /// The paper's multi-scale SMCA-DETR R50 (43.7 AP at 50 epochs), reconstructed: its encoder was
  /// never released. Maps of strides 16, 32, 64; 5 encoder layers, intra-intra-multi-intra-intra;
  /// feed-forward 1024.
  public static var r50PaperMultiScale: SMCAConfig {
    var config = SMCAConfig()
    config.encoder = .attentionMultiScale
    config.transformer.encoderLayers = 5
    config.transformer.feedForwardDim = 1024
    return config
  }

  /// A small model for quick CPU experiments: ResNet-18, 128 wide, 4 heads, 3 + 3 layers, 100 queries.
  public static var small: SMCAConfig {
    var config = SMCAConfig()
    config.backbone = .resNet(.resNet18)
    config.transformer = config.transformer.small(queries: 100)
    return config
  }

  /// Rejects settings the model cannot be built with, naming the field.
  public func validate() throws {
    let t = transformer
    try t.validateWidths()
    guard t.decoderLayers >= 1 else { throw ConfigError("transformer.decoder_layers must be at least 1: layer 0 predicts the centres") }
    guard t.queries >= 1, classCount >= 1 else { throw ConfigError("transformer.queries and class_count must be positive") }
    guard smoothing > 0, smoothing.isFinite else { throw ConfigError("smoothing (β) must be positive, got \(smoothing)") }
    guard encoderKernelSize > 0, encoderKernelSize % 2 == 1 else {
      throw ConfigError("encoder_kernel_size must be odd and positive, got \(encoderKernelSize)")
    }
    if encoder == .attentionMultiScale && encoderLayout.count != t.encoderLayers {
      throw ConfigError(
        "encoder_layout has \(encoderLayout.count) entries for transformer.encoder_layers \(t.encoderLayers): give one kind per layer")
    }
  }

  enum CodingKeys: String, CodingKey {
    case backbone, encoder, transformer, loss, scale, smoothing
    case encoderKernelSize = "encoder_kernel_size"
    case encoderLayout = "encoder_layout"
    case classCount = "class_count"
    case focalAlpha = "focal_alpha"
  }
}

/// SMCA-DETR's encoder, and with it the maps the decoder attends to.
public enum SMCAEncoder: String, Codable, Sendable, CaseIterable {
  /// DETR's transformer encoder on the stride-32 map; one key segment.
  case singleScale = "single-scale"
  /// The released model's encoder: depthwise convolutions within and between the maps of strides 8,
  /// 16, 32 and 64, no attention; the decoder attends to four segments (the stride-8 map brought to
  /// stride 16, then 16, 32, 64).
  case depthwiseMultiScale = "depthwise-multi-scale"
  /// The paper's encoder (reconstructed; never released): transformer encoder layers over the maps of
  /// strides 16, 32, 64, each either within every map or across all three (`encoder_layout`); the
  /// decoder attends to three segments.
  case attentionMultiScale = "attention-multi-scale"
}

/// A layer of the paper's multi-scale encoder.
public enum SMCAEncoderLayerKind: String, Codable, Sendable {
  /// Self-attention within each map, the weights shared by the maps.
  case intraScale = "intra"
  /// Self-attention over the tokens of all maps together.
  case multiScale = "multi"
}

/// How SMCA scales each head's Gaussian: the official `dynamic_scale` types. Every learned scale is
/// the square of a linear projection of the query (initialized to 1), and it multiplies the squared
/// distance (a precision, where the paper divides by a variance).
public enum SpatialScale: String, Codable, Sendable, CaseIterable {
  /// `type1`: no learned scale; the distance is dx² + dy².
  case fixed = "type1"
  /// `type2`: one scale per head: σ·(dx² + dy²).
  case perHead = "type2"
  /// `type3` (the released models): a scale per head and axis: σx·dx² + σy·dy².
  case perAxis = "type3"
  /// `type4`: σ1·dx² + σ2·dy² + σ3·dx²·dy² (a product of squared differences, not a covariance).
  case perAxisWithProduct = "type4"

  /// Learned scales per head (the width of the projection is this times the heads).
  public var scalesPerHead: Int {
    switch self {
    case .fixed: 0
    case .perHead: 1
    case .perAxis: 2
    case .perAxisWithProduct: 3
    }
  }
}
