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

  /// A detrex DINO state dict in our keys: the backbone renamed, and the decoder's second names
  /// for the heads (`transformer.decoder.class_embed.*`, `transformer.decoder.bbox_embed.*`, which
  /// detrex's state dict lists besides `class_embed.*`) dropped once they are checked to hold the
  /// same values. Throws when they differ (not a checkpoint detrex wrote).
  public static func stateDict(fromDetrex state: [String: Tensor], source: String) throws -> [String: Tensor] {
    var result: [String: Tensor] = [:]
    for (key, value) in state {
      for head in ["class_embed.", "bbox_embed."] where key.hasPrefix("transformer.decoder." + head) {
        let primary = String(key.dropFirst("transformer.decoder.".count))
        guard let twin = state[primary], twin.shape == value.shape, (twin.to(.float32) .== value.to(.float32)).all().item(Bool.self) else {
          throw CheckpointError(path: source, problem: "has '\(key)' that differs from '\(primary)'; detrex keeps them equal")
        }
      }
      if key.hasPrefix("transformer.decoder.class_embed.") || key.hasPrefix("transformer.decoder.bbox_embed.") { continue }
      if key.hasSuffix("num_batches_tracked") { continue }
      result[detrexKeys.rename(key)] = value
    }
    return result
  }
}
