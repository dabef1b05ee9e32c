import Detection

/// The transformer's size, shared by every family's config.
public struct TransformerSettings: Codable, Sendable, Equatable {
  public var hiddenDim: Int
  public var heads: Int
  public var encoderLayers: Int
  public var decoderLayers: Int
  public var feedForwardDim: Int
  public var dropout: Double
  public var queries: Int
  /// Per-side widths, where they differ (transformers' configs allow it): nil uses `heads` and
  /// `feedForwardDim`. JSON `encoder_heads`, `decoder_heads`, `encoder_feed_forward_dim`, `decoder_feed_forward_dim`.
  public var encoderHeads: Int?
  public var decoderHeads: Int?
  public var encoderFeedForwardDim: Int?
  public var decoderFeedForwardDim: Int?

  /// Heads and feed-forward width of one side of the transformer.
  public struct Side: Sendable, Equatable {
    public var heads: Int
    public var feedForwardDim: Int
  }

  /// Throws a `ConfigError` naming the field when a side's head count does not divide the width or a
  /// width is not positive.
  public func validateWidths() throws {
    guard hiddenDim > 0 else { throw ConfigError("transformer.hidden_dim must be positive, got \(hiddenDim)") }
    let fields: [(String, Int, Int)] = [
      (encoderHeads == nil ? "transformer.heads" : "transformer.encoder_heads", encoder.heads, encoder.feedForwardDim),
      (decoderHeads == nil ? "transformer.heads" : "transformer.decoder_heads", decoder.heads, decoder.feedForwardDim),
    ]
    for (field, heads, width) in fields {
      guard heads > 0, hiddenDim % heads == 0 else {
        throw ConfigError("\(field) \(heads) must be a positive divisor of transformer.hidden_dim \(hiddenDim)")
      }
      guard width > 0 else { throw ConfigError("the feed-forward width must be positive, got \(width)") }
    }
  }

  /// Every field in its range, naming the first that is not: widths as `validateWidths`, an even width
  /// (sine embeddings give half of it per axis), layer and query counts, dropout in [0, 1), and sizes
  /// that would not fit in memory refused.
  public func validate() throws {
    guard (2...8192).contains(hiddenDim), hiddenDim % 2 == 0 else {
      throw ConfigError("transformer.hidden_dim must be an even number between 2 and 8192, got \(hiddenDim)")
    }
    try validateWidths()
    guard (0...100).contains(encoderLayers) else { throw ConfigError("transformer.encoder_layers must be between 0 and 100, got \(encoderLayers)") }
    guard (1...100).contains(decoderLayers) else { throw ConfigError("transformer.decoder_layers must be between 1 and 100, got \(decoderLayers)") }
    guard (1...100_000).contains(queries) else { throw ConfigError("transformer.queries must be between 1 and 100000, got \(queries)") }
    guard dropout.isFinite, dropout >= 0, dropout < 1 else { throw ConfigError("transformer.dropout must lie in [0, 1), got \(dropout)") }
    for width in [encoder.feedForwardDim, decoder.feedForwardDim] where width > 65_536 {
      throw ConfigError("the feed-forward width must be at most 65536, got \(width)")
    }
  }

  public var encoder: Side { Side(heads: encoderHeads ?? heads, feedForwardDim: encoderFeedForwardDim ?? feedForwardDim) }
  public var decoder: Side { Side(heads: decoderHeads ?? heads, feedForwardDim: decoderFeedForwardDim ?? feedForwardDim) }

  public init(
    hiddenDim: Int = 256, heads: Int = 8, encoderLayers: Int = 6, decoderLayers: Int = 6, feedForwardDim: Int, dropout: Double = 0.1,
    queries: Int
  ) {
    self.hiddenDim = hiddenDim
    self.heads = heads
    self.encoderLayers = encoderLayers
    self.decoderLayers = decoderLayers
    self.feedForwardDim = feedForwardDim
    self.dropout = dropout
    self.queries = queries
  }

  /// The small CPU variant of a family: 128 wide, 4 heads, 3 + 3 layers, FFN 512.
  func small(queries: Int) -> TransformerSettings {
    TransformerSettings(
      hiddenDim: 128, heads: 4, encoderLayers: 3, decoderLayers: 3, feedForwardDim: 512, dropout: dropout, queries: queries)
  }

  enum CodingKeys: String, CodingKey {
    case hiddenDim = "hidden_dim"
    case heads
    case encoderLayers = "encoder_layers"
    case decoderLayers = "decoder_layers"
    case feedForwardDim = "feed_forward_dim"
    case dropout
    case queries
    case encoderHeads = "encoder_heads"
    case decoderHeads = "decoder_heads"
    case encoderFeedForwardDim = "encoder_feed_forward_dim"
    case decoderFeedForwardDim = "decoder_feed_forward_dim"
  }

  /// Writes every field, the per-side ones as null when unset, so that a config file shows them and
  /// `--set transformer.decoder_heads=8` finds the key.
  public func encode(to encoder: Encoder) throws {
    var container = encoder.container(keyedBy: CodingKeys.self)
    try container.encode(hiddenDim, forKey: .hiddenDim)
    try container.encode(heads, forKey: .heads)
    try container.encode(encoderLayers, forKey: .encoderLayers)
    try container.encode(decoderLayers, forKey: .decoderLayers)
    try container.encode(feedForwardDim, forKey: .feedForwardDim)
    try container.encode(dropout, forKey: .dropout)
    try container.encode(queries, forKey: .queries)
    try container.encode(encoderHeads, forKey: .encoderHeads)
    try container.encode(decoderHeads, forKey: .decoderHeads)
    try container.encode(encoderFeedForwardDim, forKey: .encoderFeedForwardDim)
    try container.encode(decoderFeedForwardDim, forKey: .decoderFeedForwardDim)
  }
}

/// Matching costs and loss weights (the set criterion's settings), shared by every family's config.
public struct SetLossSettings: Codable, Sendable, Equatable {
  public var classCost: Double
  public var boxCost = 5.0
  public var giouCost = 2.0
  public var classLossWeight: Double
  public var boxLossWeight = 5.0
  public var giouLossWeight = 2.0
  public var auxiliaryLoss = true

  public init(classCost: Double, classLossWeight: Double) {
    self.classCost = classCost
    self.classLossWeight = classLossWeight
  }

  enum CodingKeys: String, CodingKey {
    case classCost = "class_cost"
    case boxCost = "box_cost"
    case giouCost = "giou_cost"
    case classLossWeight = "class_loss_weight"
    case boxLossWeight = "box_loss_weight"
    case giouLossWeight = "giou_loss_weight"
    case auxiliaryLoss = "auxiliary_loss"
  }
}

extension TransformersCheckpoint {
  /// The transformer settings of a transformers config; the decoder's heads and FFN width, where they
  /// differ from the encoder's, become the per-side fields.
  func transformerSettings(defaultFeedForward: Int, defaultQueries: Int) throws -> TransformerSettings {
    let heads: Int = try value("encoder_attention_heads", default: 8)
    let feedForward: Int = try value("encoder_ffn_dim", default: defaultFeedForward)
    let decoderHeads: Int = try value("decoder_attention_heads", default: heads)
    let decoderFeedForward: Int = try value("decoder_ffn_dim", default: feedForward)
    var settings = TransformerSettings(
      hiddenDim: try value("d_model", default: 256), heads: heads, encoderLayers: try value("encoder_layers", default: 6),
      decoderLayers: try value("decoder_layers", default: 6), feedForwardDim: feedForward, dropout: try value("dropout", default: 0.1),
      queries: try value("num_queries", default: defaultQueries))
    if decoderHeads != heads { settings.decoderHeads = decoderHeads }
    if decoderFeedForward != feedForward { settings.decoderFeedForwardDim = decoderFeedForward }
    for (field, side) in [("encoder_attention_heads", settings.encoder.heads), ("decoder_attention_heads", settings.decoder.heads)]
    where side <= 0 || settings.hiddenDim % side != 0 {
      throw CheckpointError(path: folder.path, problem: "has '\(field)' \(side), which does not divide 'd_model' \(settings.hiddenDim)")
    }
    return settings
  }

  /// The loss settings of a transformers config, with the family's defaults.
  func lossSettings(_ defaults: SetLossSettings, classWeightField: String?) throws -> SetLossSettings {
    var settings = defaults
    settings.classCost = try value("class_cost", default: defaults.classCost)
    settings.boxCost = try value("bbox_cost", default: defaults.boxCost)
    settings.giouCost = try value("giou_cost", default: defaults.giouCost)
    if let classWeightField { settings.classLossWeight = try value(classWeightField, default: defaults.classLossWeight) }
    settings.boxLossWeight = try value("bbox_loss_coefficient", default: defaults.boxLossWeight)
    settings.giouLossWeight = try value("giou_loss_coefficient", default: defaults.giouLossWeight)
    settings.auxiliaryLoss = try value("auxiliary_loss", default: false)
    return settings
  }

  /// Checks the model type and the settings every family shares.
  func requireFamily(_ modelType: String, name: String, positionEncodings: [String]) throws {
    guard self.modelType == modelType else {
      throw CheckpointError(path: folder.path, problem: "holds a \"\(self.modelType ?? "?")\" model, not \(name); load it as that family")
    }
    try require("activation_function", in: ["relu"], default: "relu")
    try require("position_embedding_type", in: positionEncodings, default: "sine")
  }
}
