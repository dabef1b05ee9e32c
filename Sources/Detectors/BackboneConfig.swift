import Detection

/// Which ResNet a detector uses: a standard depth, or explicit widths (as Hugging Face configs allow).
public struct BackboneConfig: Codable, Sendable, Equatable {
  public var blocksPerStage: [Int]
  public var stemChannels: Int
  public var stageChannels: [Int]
  public var bottleneck: Bool
  /// DC5: the last stage dilated instead of strided.
  public var dilation: Bool
  /// Frozen batch norm, for pretrained backbones (the references'); false trains batch norm, for a
  /// backbone trained from scratch.
  public var frozenNormalization: Bool

  public init(
    blocksPerStage: [Int], stemChannels: Int, stageChannels: [Int], bottleneck: Bool, dilation: Bool = false,
    frozenNormalization: Bool = true
  ) {
    self.blocksPerStage = blocksPerStage
    self.stemChannels = stemChannels
    self.stageChannels = stageChannels
    self.bottleneck = bottleneck
    self.dilation = dilation
    self.frozenNormalization = frozenNormalization
  }

  public init(from decoder: Decoder) throws {
    let container = try decoder.container(keyedBy: CodingKeys.self)
    blocksPerStage = try container.decode([Int].self, forKey: .blocksPerStage)
    stemChannels = try container.decode(Int.self, forKey: .stemChannels)
    stageChannels = try container.decode([Int].self, forKey: .stageChannels)
    bottleneck = try container.decode(Bool.self, forKey: .bottleneck)
    dilation = try container.decodeIfPresent(Bool.self, forKey: .dilation) ?? false
    frozenNormalization = try container.decodeIfPresent(Bool.self, forKey: .frozenNormalization) ?? true
  }

  /// Every field in its range, naming the first that is not.
  public func validate() throws {
    guard blocksPerStage.count == 4, stageChannels.count == 4 else {
      throw ConfigError("backbone.blocks_per_stage and backbone.stage_channels must list 4 stages, got \(blocksPerStage.count) and \(stageChannels.count)")
    }
    guard blocksPerStage.allSatisfy({ (1...100).contains($0) }) else {
      throw ConfigError("backbone.blocks_per_stage must be between 1 and 100 each, got \(blocksPerStage)")
    }
    guard (1...4096).contains(stemChannels), stageChannels.allSatisfy({ (1...16_384).contains($0) }) else {
      throw ConfigError("backbone.stem_channels (1-4096) and backbone.stage_channels (1-16384 each) are out of range: \(stemChannels), \(stageChannels)")
    }
    if bottleneck, let odd = stageChannels.first(where: { $0 % 4 != 0 }) {
      throw ConfigError("backbone.stage_channels must be multiples of 4 with bottleneck blocks (4x expansion), got \(odd)")
    }
  }

  public static func resNet(_ depth: ResNet.Depth, dilation: Bool = false) -> BackboneConfig {
    let blocks: [Int] =
      switch depth {
      case .resNet18: [2, 2, 2, 2]
      case .resNet34, .resNet50: [3, 4, 6, 3]
      case .resNet101: [3, 4, 23, 3]
      }
    return BackboneConfig(
      blocksPerStage: blocks, stemChannels: 64, stageChannels: depth.stageChannels, bottleneck: depth == .resNet50 || depth == .resNet101,
      dilation: dilation)
  }

  public func makeResNet(normalizationEpsilon: Double = 1e-5, frozenNormalizationTrainsAffine: Bool = false) -> ResNet {
    ResNet(
      blocksPerStage: blocksPerStage, stemChannels: stemChannels, stageChannels: stageChannels, bottleneck: bottleneck,
      dilateLastStage: dilation, frozenNormalization: frozenNormalization, normalizationEpsilon: normalizationEpsilon,
      frozenNormalizationTrainsAffine: frozenNormalizationTrainsAffine)
  }

  enum CodingKeys: String, CodingKey {
    case blocksPerStage = "blocks_per_stage"
    case stemChannels = "stem_channels"
    case stageChannels = "stage_channels"
    case bottleneck
    case dilation
    case frozenNormalization = "frozen_batch_norm"
  }
}
