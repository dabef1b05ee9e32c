import Detection
import Torch
import TorchNN

extension DINOModel {
  /// detectron2's ResNet keys (detrex checkpoints) → torchvision's (ours), under `backbone.`.
  public static let detrexKeys = KeyRenaming(rules: [
    .init(#"backbone\.stem\.conv1\.weight"#, "backbone.conv1.weight"),
    .init(#"backbone\.stem\.conv1\.norm\.(.+)"#, "backbone.bn1.{1}"),
    .init(#"backbone\.res(\d)\.(\d+)\.conv(\d)\.weight"#, "backbone.layer{1-1}.{2}.conv{3}.weight"),
    .init(#"backbone\.res(\d)\.(\d+)\.conv(\d)\.norm\.(.+)"#, "backbone.layer{1-1}.{2}.bn{3}.{4}"),
    .init(#"backbone\.res(\d)\.(\d+)\.shortcut\.weight"#, "backbone.layer{1-1}.{2}.downsample.0.weight"),
    .init(#"backbone\.res(\d)\.(\d+)\.shortcut\.norm\.(.+)"#, "backbone.layer{1-1}.{2}.downsample.1.{3}"),
  ])

  /// A detrex DINO or Focus-DETR state dict in our keys: the backbone renamed, and the second
  /// names under which the official state dicts list shared heads dropped once they are checked to
  /// hold the same values: `transformer.decoder.class_embed.N.*` / `bbox_embed.N.*` (= `class_embed.N.*`,
  /// `bbox_embed.N.*`) and Focus-DETR's `enhance_MCSP_layerlist.N.*` / `transformer.encoder.enhance_MCSP.N.*`
  /// (= the proposals' class head, the last `class_embed`). Throws when they differ (not a
  /// checkpoint the official code wrote).
  public static func stateDict(fromDetrex state: [String: Tensor], source: String) throws -> [String: Tensor] {
    let proposalHead = state.keys.compactMap { key -> Int? in
      guard key.hasPrefix("class_embed.") else { return nil }
      return Int(key.split(separator: ".")[1])
    }.max()
    var result: [String: Tensor] = [:]
    for (key, value) in state {
      if key.hasSuffix("num_batches_tracked") { continue }
      if let primary = aliasTarget(key, proposalHead: proposalHead) {
        guard let twin = state[primary], twin.shape == value.shape, (twin.to(.float32) .== value.to(.float32)).all().item(Bool.self) else {
          throw CheckpointError(path: source, problem: "has '\(key)' that differs from '\(primary)'; the official code keeps them equal")
        }
        continue
      }
      result[detrexKeys.rename(key)] = value
    }
    return result
  }

  /// The key an alias names the same tensor as, nil for keys that are not aliases.
  private static func aliasTarget(_ key: String, proposalHead: Int?) -> String? {
    for prefix in ["transformer.decoder.class_embed.", "transformer.decoder.bbox_embed."] where key.hasPrefix(prefix) {
      return String(key.dropFirst("transformer.decoder.".count))
    }
    for prefix in ["enhance_MCSP_layerlist.", "transformer.encoder.enhance_MCSP."] where key.hasPrefix(prefix) {
      // `<prefix><layer>.<weight|bias>`
      return "class_embed.\(proposalHead ?? -1).\(key.split(separator: ".").last!)"
    }
    return nil
  }
}
