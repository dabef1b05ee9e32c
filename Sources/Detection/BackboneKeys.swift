import TorchNN

/// Renaming of Hugging Face `transformers`' ResNet keys to torchvision's (our layout), prefix excluded.
public enum BackboneKeys {
  public static let fromTransformersResNet = KeyRenaming(rules: [
    .init(#"embedder\.embedder\.convolution\.(.+)"#, "conv1.{1}"),
    .init(#"embedder\.embedder\.normalization\.(.+)"#, "bn1.{1}"),
    .init(#"encoder\.stages\.(\d+)\.layers\.(\d+)\.layer\.(\d+)\.convolution\.(.+)"#, "layer{1+1}.{2}.conv{3+1}.{4}"),
    .init(#"encoder\.stages\.(\d+)\.layers\.(\d+)\.layer\.(\d+)\.normalization\.(.+)"#, "layer{1+1}.{2}.bn{3+1}.{4}"),
    .init(#"encoder\.stages\.(\d+)\.layers\.(\d+)\.shortcut\.convolution\.(.+)"#, "layer{1+1}.{2}.downsample.0.{3}"),
    .init(#"encoder\.stages\.(\d+)\.layers\.(\d+)\.shortcut\.normalization\.(.+)"#, "layer{1+1}.{2}.downsample.1.{3}"),
  ])
}
