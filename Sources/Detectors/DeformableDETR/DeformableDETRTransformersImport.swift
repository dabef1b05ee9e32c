import Detection
import Torch
import TorchNN

extension DeformableDETRConfig {
  /// The config of a transformers Deformable DETR checkpoint (`model_type` "deformable_detr").
  public init(transformers checkpoint: TransformersCheckpoint) throws {
    guard checkpoint.modelType == "deformable_detr" else {
      throw CheckpointError(
        path: checkpoint.folder.path,
        problem: "holds a \"\(checkpoint.modelType ?? "?")\" model, not Deformable DETR; load it as that family")
    }
    try checkpoint.require("activation_function", in: ["relu"], default: "relu")
    try checkpoint.require("position_embedding_type", in: ["sine"], default: "sine")
    self.init()
    backbone = try checkpoint.backboneConfig()
    let timm: Bool = try checkpoint.value("use_timm_backbone", default: false)
    featureLevels = try checkpoint.value("num_feature_levels", default: 4)
    if timm {
      backboneStages = featureLevels > 1 ? [2, 3, 4] : [4]
    } else {
      let resnet: [String: Any] = try checkpoint.value("backbone_config", default: [:])
      let names = resnet["out_features"] as? [String] ?? ["stage4"]
      let stages = names.compactMap { $0.hasPrefix("stage") ? Int($0.dropFirst(5)) : nil }
      guard stages.count == names.count, !stages.isEmpty, stages.allSatisfy({ (2...4).contains($0) }) else {
        throw CheckpointError(
          path: checkpoint.folder.path, problem: "field 'backbone_config.out_features' is \(names); use stage2, stage3 and/or stage4")
      }
      backboneStages = stages
    }
    transformer = try checkpoint.transformerSettings(defaultFeedForward: 1024, defaultQueries: 300)
    encoderPoints = try checkpoint.value("encoder_n_points", default: 4)
    decoderPoints = try checkpoint.value("decoder_n_points", default: 4)
    let proposals: Int = try checkpoint.value("two_stage_num_proposals", default: transformer.queries)
    classCount = try checkpoint.classCount()
    boxRefinement = try checkpoint.value("with_box_refine", default: false)
    twoStage = try checkpoint.value("two_stage", default: false)
    if twoStage { transformer.queries = proposals }
    // transformers' default class cost for this family is 1 (the reference's is 2).
    loss = try checkpoint.lossSettings(SetLossSettings(classCost: 1, classLossWeight: 2), classWeightField: nil)
    focalAlpha = try checkpoint.value("focal_alpha", default: 0.25)
  }
}

extension DeformableDETRModel {
  /// transformers' Deformable DETR keys (4.x and 5.x) → the reference's.
  public static let transformersKeys = KeyRenaming(rules: [
    .init(#"model\.backbone\.(?:conv_encoder\.)?model\.(.+)"#, "backbone.0.body.{1}"),
    .init(#"model\.input_proj\.(.+)"#, "input_proj.{1}"),
    .init(#"model\.level_embed"#, "transformer.level_embed"),
    .init(#"model\.query_position_embeddings\.weight"#, "query_embed.weight"),
    .init(#"model\.(reference_points|enc_output|enc_output_norm|pos_trans|pos_trans_norm)\.(.+)"#, "transformer.{1}.{2}"),
    .init(#"model\.encoder\.layers\.(\d+)\.self_attn\.(.+)"#, "transformer.encoder.layers.{1}.self_attn.{2}"),
    .init(#"model\.encoder\.layers\.(\d+)\.self_attn_layer_norm\.(.+)"#, "transformer.encoder.layers.{1}.norm1.{2}"),
    .init(#"model\.encoder\.layers\.(\d+)\.(?:mlp\.)?fc1\.(.+)"#, "transformer.encoder.layers.{1}.linear1.{2}"),
    .init(#"model\.encoder\.layers\.(\d+)\.(?:mlp\.)?fc2\.(.+)"#, "transformer.encoder.layers.{1}.linear2.{2}"),
    .init(#"model\.encoder\.layers\.(\d+)\.final_layer_norm\.(.+)"#, "transformer.encoder.layers.{1}.norm2.{2}"),
    .init(#"model\.decoder\.layers\.(\d+)\.self_attn\.(q|k|v)_proj\.(.+)"#, "transformer.decoder.layers.{1}.self_attn.{2}_proj.{3}"),
    .init(#"model\.decoder\.layers\.(\d+)\.self_attn\.(?:o_proj|out_proj)\.(.+)"#, "transformer.decoder.layers.{1}.self_attn.out_proj.{2}"),
    .init(#"model\.decoder\.layers\.(\d+)\.self_attn_layer_norm\.(.+)"#, "transformer.decoder.layers.{1}.norm2.{2}"),
    .init(#"model\.decoder\.layers\.(\d+)\.encoder_attn\.(.+)"#, "transformer.decoder.layers.{1}.cross_attn.{2}"),
    .init(#"model\.decoder\.layers\.(\d+)\.encoder_attn_layer_norm\.(.+)"#, "transformer.decoder.layers.{1}.norm1.{2}"),
    .init(#"model\.decoder\.layers\.(\d+)\.(?:mlp\.)?fc1\.(.+)"#, "transformer.decoder.layers.{1}.linear1.{2}"),
    .init(#"model\.decoder\.layers\.(\d+)\.(?:mlp\.)?fc2\.(.+)"#, "transformer.decoder.layers.{1}.linear2.{2}"),
    .init(#"model\.decoder\.layers\.(\d+)\.final_layer_norm\.(.+)"#, "transformer.decoder.layers.{1}.norm3.{2}"),
    .init(#"model\.decoder\.(bbox_embed|class_embed)\.(.+)"#, "transformer.decoder.{1}.{2}"),
  ])

  /// A Deformable DETR built from a transformers checkpoint folder, loaded strictly, in evaluation mode.
  ///
  /// transformers ties heads that the reference keeps separate (its class heads with refinement and
  /// no two-stage); tied heads are saved once, so a missing head is filled from the first one,
  /// which is the value transformers computes with.
  public static func load(transformers checkpoint: TransformersCheckpoint) throws -> DeformableDETRModel {
    let config = try DeformableDETRConfig(transformers: checkpoint)
    let model = DeformableDETRModel(config: config)
    var state = TransformersKeyRules.referenceStateDict(checkpoint, rules: transformersKeys)
    for head in ["class_embed", "bbox_embed"] {
      for (key, value) in state where key.hasPrefix("transformer.decoder.\(head).") {
        let top = String(key.dropFirst("transformer.decoder.".count))
        if state[top] == nil { state[top] = value }
      }
      for index in 1..<(config.transformer.decoderLayers + (config.twoStage ? 1 : 0)) {
        for (key, value) in state where key.hasPrefix("\(head).0.") {
          let sibling = "\(head).\(index)." + key.dropFirst("\(head).0.".count)
          if state[sibling] == nil { state[sibling] = value }
        }
      }
    }
    try TransformersKeyRules.load(state, into: model, from: checkpoint, family: "Deformable DETR")
    model.eval()
    return model
  }
}
