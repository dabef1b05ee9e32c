import Detection

/// Which ResNet a detector uses: a standard depth, or explicit widths (as Hugging Face configs allow).
public struct BackboneConfig: Codable, Sendable, Equatable {
  public var blocksPerStage: [Int]
  public var stemChannels: Int
  public var stageChannels: [Int]
  public var bottleneck: Bool
  /// DC5: the last stage dilated instead of strided.
  public var dilation: Bool

  public init(blocksPerStage: [Int], stemChannels: Int, stageChannels: [Int], bottleneck: Bool, dilation: Bool = false) {
    self.blocksPerStage = blocksPerStage
    self.stemChannels = stemChannels
    self.stageChannels = stageChannels
    self.bottleneck = bottleneck
    self.dilation = dilation
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

  func makeResNet() -> ResNet {
    ResNet(
      blocksPerStage: blocksPerStage, stemChannels: stemChannels, stageChannels: stageChannels, bottleneck: bottleneck,
      dilateLastStage: dilation)
  }

  enum CodingKeys: String, CodingKey {
    case blocksPerStage = "blocks_per_stage"
    case stemChannels = "stem_channels"
    case stageChannels = "stage_channels"
    case bottleneck
    case dilation
  }
}
