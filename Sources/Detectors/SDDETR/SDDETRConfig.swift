import Detection

/// SD-DETR (Zhang, Song, Liu, Li, ICCV 2023): Conditional DETR with spatially decoupled
/// classification and localization queries. The authors released no code; this is swift-detr's
/// reconstruction (docs/families/sd-detr.md), and every choice the paper leaves open is a field
/// here. With `taskAwareQueries`, `splitCrossAttention` and `twoFullDecoders` off, `alignmentLoss`
/// `.off` and `boxReference` `.center`, the model is exactly Conditional DETR.
public struct SDDETRConfig: Codable, Sendable, Equatable {
  /// How the shared self-attention sees the two query kinds.
  public enum SelfAttentionConcat: String, Codable, Sendable, CaseIterable {
    /// One token per query of twice the width (query i's two halves stay paired; N² cost).
    case channel
    /// 2N tokens of the model width (the two kinds attend to each other; (2N)² cost).
    case token
  }

  /// The classification loss.
  public enum ClassificationLoss: String, Codable, Sendable, CaseIterable {
    /// Conditional DETR's sigmoid focal loss.
    case off
    /// The alignment loss with TOOD's `|t − p|^γ` weighting of the matched entries.
    case taskAlignment = "task-alignment"
    /// The alignment loss with Align-DETR's IA-BCE (matched entries weighted 1).
    case iaBCE = "ia-bce"
  }

  /// What the box head's output is added to (in logit space) before the sigmoid.
  public enum BoxReference: String, Codable, Sendable, CaseIterable {
    /// The mini-detector's box, all four coordinates (needs `taskAwareQueries`).
    case box
    /// The reference centre only, as Conditional DETR.
    case center
  }

  public var backbone = BackboneConfig.resNet(.resNet50)
  public var transformer = TransformerSettings(feedForwardDim: 2048, queries: 300)
  /// Object classes (sigmoid outputs, no "no object" class).
  public var classCount = 91
  public var learnedPositionEncoding = false
  public var loss = SetLossSettings(classCost: 2, classLossWeight: 2)
  public var focalAlpha = 0.25

  /// TAQ: queries made from a mini-detector on the encoder output (top-N cells, then features at
  /// discriminative points); off: Conditional DETR's learned query table and zero content.
  public var taskAwareQueries = true
  /// DFL: separate classification and localization cross-attention (and FFN) branches after a
  /// shared self-attention; off: one query per object, as Conditional DETR.
  public var splitCrossAttention = true
  /// TAL: the alignment loss (`AlignmentLoss`), or the focal loss.
  public var alignmentLoss = ClassificationLoss.taskAlignment
  public var selfAttentionConcat = SelfAttentionConcat.channel
  /// The localization branch uses the classification branch's key and value projections of the memory.
  public var shareKeyValue = false
  /// M: points sampled per query and branch.
  public var pointsPerBranch = 4
  /// The paper's "two decoders" comparison: each branch has its own self-attention too (no shared layer).
  public var twoFullDecoders = false
  /// 3×3 conv + GroupNorm(32) + ReLU layers in each of the mini-detector's two towers (0: the heads
  /// read the memory directly).
  public var miniDetectorConvLayers = 4
  public var boxReference = BoxReference.box
  /// Stop the gradient at the point-sampled query content (DESTR does); then the point offsets do not learn.
  public var detachSampledContent = false

  public init() {}

  /// SD-DETR on a Conditional DETR's layout (backbone, transformer, classes, loss), every switch
  /// off: the same model, which a Conditional DETR checkpoint loads into.
  public init(conditional: ConditionalDETRConfig) {
    self.init()
    backbone = conditional.backbone
    transformer = conditional.transformer
    classCount = conditional.classCount
    learnedPositionEncoding = conditional.learnedPositionEncoding
    loss = conditional.loss
    focalAlpha = conditional.focalAlpha
    self = conditionalDETR
  }

  /// Conditional DETR R50's layout with SD-DETR's decoder: 300 queries, 4 points per branch.
  public static let r50 = SDDETRConfig()

  /// A small model for quick CPU experiments: ResNet-18 with a dilated last stage (stride 16, so
  /// that a 160-pixel image has 100 cells to pick 50 queries from), 128 wide, 3 + 3 layers,
  /// mini-detector towers of 2 layers.
  public static var small: SDDETRConfig {
    var config = SDDETRConfig()
    config.backbone = .resNet(.resNet18, dilation: true)
    config.transformer = config.transformer.small(queries: 50)
    config.miniDetectorConvLayers = 2
    return config
  }

  /// This config with every SD-DETR switch off: Conditional DETR.
  public var conditionalDETR: SDDETRConfig {
    var config = self
    config.taskAwareQueries = false
    config.splitCrossAttention = false
    config.twoFullDecoders = false
    config.alignmentLoss = .off
    config.boxReference = .center
    config.shareKeyValue = false
    config.selfAttentionConcat = .channel
    config.detachSampledContent = false
    return config
  }

  /// The alignment loss this config trains with, if any.
  public var alignment: AlignmentLoss? {
    switch alignmentLoss {
    case .off: nil
    case .taskAlignment: AlignmentLoss(positiveWeighting: .qualityFocal)
    case .iaBCE: AlignmentLoss(positiveWeighting: .none)
    }
  }

  /// Throws a `ConfigError` naming the field when the config cannot work or a switch has no effect.
  public func validate() throws {
    let t = transformer
    try t.validateWidths()
    guard t.hiddenDim % 2 == 0 else { throw ConfigError("transformer.hidden_dim \(t.hiddenDim) must be even") }
    guard t.decoderLayers >= 1, t.queries >= 1, classCount >= 1 else {
      throw ConfigError("transformer.decoder_layers, transformer.queries and class_count must be positive")
    }
    guard pointsPerBranch >= 1 else { throw ConfigError("points_per_branch (M) must be at least 1, got \(pointsPerBranch)") }
    guard miniDetectorConvLayers >= 0 else {
      throw ConfigError("mini_detector_conv_layers must be 0 or more, got \(miniDetectorConvLayers)")
    }
    if miniDetectorConvLayers > 0, t.hiddenDim % 32 != 0 {
      throw ConfigError(
        "mini_detector_conv_layers > 0 uses GroupNorm with 32 groups, so transformer.hidden_dim (\(t.hiddenDim)) must be a multiple of 32")
    }
    let branches = splitCrossAttention || twoFullDecoders
    if twoFullDecoders, !splitCrossAttention {
      throw ConfigError("two_full_decoders replaces the split cross-attention by two whole decoders; set split_cross_attention to true")
    }
    if !branches, shareKeyValue {
      throw ConfigError("share_key_value shares projections between the two cross-attention branches; set split_cross_attention to true")
    }
    if !branches || twoFullDecoders, selfAttentionConcat != .channel {
      throw ConfigError(
        "self_attention_concat '\(selfAttentionConcat.rawValue)' concatenates the two query kinds in a shared self-attention, "
          + "which needs split_cross_attention true and two_full_decoders false")
    }
    if !taskAwareQueries, boxReference == .box {
      throw ConfigError(
        "box_reference 'box' refines the mini-detector's boxes, which only task_aware_queries makes; set box_reference to 'center'")
    }
    if !taskAwareQueries, detachSampledContent {
      throw ConfigError("detach_sampled_content acts on point-sampled queries; set task_aware_queries to true")
    }
  }

  enum CodingKeys: String, CodingKey {
    case backbone, transformer, loss
    case classCount = "class_count"
    case learnedPositionEncoding = "learned_position_encoding"
    case focalAlpha = "focal_alpha"
    case taskAwareQueries = "task_aware_queries"
    case splitCrossAttention = "split_cross_attention"
    case alignmentLoss = "alignment_loss"
    case selfAttentionConcat = "self_attention_concat"
    case shareKeyValue = "share_key_value"
    case pointsPerBranch = "points_per_branch"
    case twoFullDecoders = "two_full_decoders"
    case miniDetectorConvLayers = "mini_detector_conv_layers"
    case boxReference = "box_reference"
    case detachSampledContent = "detach_sampled_content"
  }
}
