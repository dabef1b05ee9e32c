import Detection
import Torch
import TorchNN

/// Renaming rules from transformers' key layout (4.x and 5.x) to the reference repositories', kept as data.
enum TransformersKeyRules {
  /// Backbone, input projection, query table, DETR-style encoder, decoder norm and heads:
  /// what DETR and Conditional DETR share.
  static let singleScaleShared: [KeyRenaming.Rule] = [
    .init(#"model\.backbone\.(?:conv_encoder\.)?model\.(.+)"#, "backbone.0.body.{1}"),
    .init(#"model\.(?:backbone\.)?position_embedding\.row_embeddings\.weight"#, "backbone.1.row_embed.weight"),
    .init(#"model\.(?:backbone\.)?position_embedding\.column_embeddings\.weight"#, "backbone.1.col_embed.weight"),
    .init(#"model\.input_projection\.(.+)"#, "input_proj.{1}"),
    .init(#"model\.query_position_embeddings\.weight"#, "query_embed.weight"),
    .init(#"model\.encoder\.layers\.(\d+)\.self_attn\.(q|k|v)_proj\.(.+)"#, "transformer.encoder.layers.{1}.self_attn.{2}_proj.{3}"),
    .init(#"model\.encoder\.layers\.(\d+)\.self_attn\.(?:o_proj|out_proj)\.(.+)"#, "transformer.encoder.layers.{1}.self_attn.out_proj.{2}"),
    .init(#"model\.encoder\.layers\.(\d+)\.self_attn_layer_norm\.(.+)"#, "transformer.encoder.layers.{1}.norm1.{2}"),
    .init(#"model\.encoder\.layers\.(\d+)\.(?:mlp\.)?fc1\.(.+)"#, "transformer.encoder.layers.{1}.linear1.{2}"),
    .init(#"model\.encoder\.layers\.(\d+)\.(?:mlp\.)?fc2\.(.+)"#, "transformer.encoder.layers.{1}.linear2.{2}"),
    .init(#"model\.encoder\.layers\.(\d+)\.final_layer_norm\.(.+)"#, "transformer.encoder.layers.{1}.norm2.{2}"),
    .init(#"model\.decoder\.layers\.(\d+)\.self_attn_layer_norm\.(.+)"#, "transformer.decoder.layers.{1}.norm1.{2}"),
    .init(#"model\.decoder\.layers\.(\d+)\.encoder_attn_layer_norm\.(.+)"#, "transformer.decoder.layers.{1}.norm2.{2}"),
    .init(#"model\.decoder\.layers\.(\d+)\.(?:mlp\.)?fc1\.(.+)"#, "transformer.decoder.layers.{1}.linear1.{2}"),
    .init(#"model\.decoder\.layers\.(\d+)\.(?:mlp\.)?fc2\.(.+)"#, "transformer.decoder.layers.{1}.linear2.{2}"),
    .init(#"model\.decoder\.layers\.(\d+)\.final_layer_norm\.(.+)"#, "transformer.decoder.layers.{1}.norm3.{2}"),
    .init(#"model\.decoder\.layernorm\.(.+)"#, "transformer.decoder.norm.{1}"),
    .init(#"class_labels_classifier\.(.+)"#, "class_embed.{1}"),
    .init(#"bbox_predictor\.(.+)"#, "bbox_embed.{1}"),
  ]

  /// The state dict of a transformers checkpoint in the reference layout: keys renamed by `rules`,
  /// the transformers ResNet's names mapped to torchvision's, q/k/v projections packed where the
  /// reference packs them, and `num_batches_tracked` dropped (frozen batch norm has none).
  static func referenceStateDict(_ checkpoint: TransformersCheckpoint, rules: KeyRenaming) -> [String: Tensor] {
    var state = rules.rename(checkpoint.tensors.filter { !$0.key.hasSuffix("num_batches_tracked") })
    state = Dictionary(
      uniqueKeysWithValues: state.map { key, value in
        guard key.hasPrefix("backbone.0.body.") else { return (key, value) }
        return ("backbone.0.body." + BackboneKeys.fromTransformersResNet.rename(String(key.dropFirst(16))), value)
      })
    return packAttentionProjections(state)
  }

  /// Loads a state dict strictly, turning a mismatch into a checkpoint error naming the folder.
  static func load(_ state: [String: Tensor], into model: Module, from checkpoint: TransformersCheckpoint, family: String) throws {
    do {
      try model.load(stateDict: state)
    } catch let error as StateDictError {
      throw CheckpointError(
        path: checkpoint.folder.path, problem: "does not match the \(family) its config describes:\n\(error.report.summary)")
    }
  }
}
