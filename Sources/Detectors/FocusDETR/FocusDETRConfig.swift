import Detection

/// Focus-DETR (Zheng, Dong, Hu, Chen, Wang; ICCV 2023) as the official code builds it on detrex's
/// DINO: the DINO architecture (every `DINOConfig` field, in the same JSON object) with a sparse
/// encoder. A foreground token selector scores every token; encoder layer l updates only the best
/// `floor(cascade[l] · (floor(ρ · valid tokens) + 1))` tokens, the best `selfAttentionTopK` of them
/// by category score also attend to each other (dual attention).
public struct FocusDETRConfig: Codable, Sendable, Equatable {
  public var dino: DINOConfig
  /// ρ: the fraction of an image's valid tokens taken as foreground (`focus_rho`).
  public var foregroundRatio = 0.5
  /// Per encoder layer, the fraction of the foreground tokens it updates (`cascade_set`).
  public var cascade = [1.0, 0.8, 0.6, 0.6, 0.4, 0.2]
  /// Tokens of the object-enhanced self-attention per layer (`topk_sa`, 300 in the official code;
  /// at most the layer's kept tokens here, where the official code fails).
  public var selfAttentionTopK = 300
  /// How a token's category score is made from its best class logit c and foreground logit f.
  public var categoryScore = CategoryScore.rawLogits
  public var foregroundLossWeight = 1.5
  /// Per level, the range of a box's largest centre-to-side distance (pixels) that makes the
  /// level's tokens inside it foreground: disjoint in the official code.
  public var foregroundRanges: [ClosedRange<Double>] = [-1...64, 64...128, 128...256, 256...99_999_999]

  /// How the foreground selector scores a token from its class logits.
  public enum CategoryScore: String, Codable, Sendable {
    /// c · f on raw logits, as the official code (two negative logits rank high).
    case rawLogits = "raw-logits"
    /// σ(c) · σ(f), the product of probabilities the paper describes.
    case probabilities
  }

  public init(dino: DINOConfig = DINOConfig()) { self.dino = dino }

  /// The official `focus_detr_r50_4scale_12ep`: DINO R50 4-scale; 48.8 AP on COCO val2017 after 12 epochs.
  public static let r50FourScale = FocusDETRConfig()

  /// The official `focus_detr_r50_4scale_36ep` (DAB-DETR's position encoding: temperature 20,
  /// offset 0); 50.4 AP after 36 epochs (the README's checkpoint).
  public static var r50FourScaleLongSchedule: FocusDETRConfig {
    FocusDETRConfig(dino: .r50FourScaleLongSchedule)
  }

  /// DINO's small preset with the sparse encoder: 2 encoder layers keeping 100% and 60% of the
  /// foreground, self-attention among 100 tokens, 3 levels (strides 8, 16, 32) with ranges
  /// (−1, 64], (64, 128], (128, ∞).
  public static var small: FocusDETRConfig {
    var config = FocusDETRConfig(dino: .small)
    config.cascade = [1.0, 0.6]
    config.selfAttentionTopK = 100
    config.foregroundRanges = [-1...64, 64...128, 128...99_999_999]
    return config
  }

  /// Checks what a preset or a config file could get wrong.
  public func validate() throws {
    try dino.validate()
    guard cascade.count == dino.transformer.encoderLayers else {
      throw ConfigError("cascade has \(cascade.count) entries for \(dino.transformer.encoderLayers) encoder layers; give one per layer")
    }
    guard foregroundRanges.count == dino.featureLevels else {
      throw ConfigError(
        "foreground_ranges has \(foregroundRanges.count) ranges for \(dino.featureLevels) feature levels; give one per level")
    }
    guard (0...1).contains(foregroundRatio), foregroundRatio > 0, cascade.allSatisfy({ (0...1).contains($0) && $0 > 0 }),
      selfAttentionTopK > 0
    else {
      throw ConfigError("foreground_ratio and cascade entries must be in (0, 1], self_attention_top_k positive")
    }
  }

  public init(from decoder: Decoder) throws {
    dino = try DINOConfig(from: decoder)
    let container = try decoder.container(keyedBy: CodingKeys.self)
    foregroundRatio = try container.decodeIfPresent(Double.self, forKey: .foregroundRatio) ?? foregroundRatio
    cascade = try container.decodeIfPresent([Double].self, forKey: .cascade) ?? cascade
    selfAttentionTopK = try container.decodeIfPresent(Int.self, forKey: .selfAttentionTopK) ?? selfAttentionTopK
    categoryScore = try container.decodeIfPresent(CategoryScore.self, forKey: .categoryScore) ?? categoryScore
    foregroundLossWeight = try container.decodeIfPresent(Double.self, forKey: .foregroundLossWeight) ?? foregroundLossWeight
    if let ranges = try container.decodeIfPresent([[Double]].self, forKey: .foregroundRanges) {
      guard ranges.allSatisfy({ $0.count == 2 && $0[0] <= $0[1] }) else {
        throw DecodingError.dataCorruptedError(
          forKey: .foregroundRanges, in: container, debugDescription: "each range is [lower, upper] with lower ≤ upper")
      }
      foregroundRanges = ranges.map { $0[0]...$0[1] }
    }
    try validate()
  }

  public func encode(to encoder: Encoder) throws {
    try dino.encode(to: encoder)
    var container = encoder.container(keyedBy: CodingKeys.self)
    try container.encode(foregroundRatio, forKey: .foregroundRatio)
    try container.encode(cascade, forKey: .cascade)
    try container.encode(selfAttentionTopK, forKey: .selfAttentionTopK)
    try container.encode(categoryScore, forKey: .categoryScore)
    try container.encode(foregroundLossWeight, forKey: .foregroundLossWeight)
    try container.encode(foregroundRanges.map { [$0.lowerBound, $0.upperBound] }, forKey: .foregroundRanges)
  }

  enum CodingKeys: String, CodingKey {
    case foregroundRatio = "foreground_ratio"
    case cascade
    case selfAttentionTopK = "self_attention_top_k"
    case categoryScore = "category_score"
    case foregroundLossWeight = "foreground_loss_weight"
    case foregroundRanges = "foreground_ranges"
  }
}
