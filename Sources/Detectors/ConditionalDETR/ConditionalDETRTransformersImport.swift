import Detection
import Torch
import TorchNN

extension ConditionalDETRConfig {
  /// The config of a transformers Conditional DETR checkpoint (`model_type` "conditional_detr").
  public init(transformers checkpoint: TransformersCheckpoint) throws {
    guard checkpoint.modelType == "conditional_detr" else {
      throw CheckpointError(
        path: checkpoint.folder.path,
        problem: "holds a \"\(checkpoint.modelType ?? "?")\" model, not Conditional DETR; load it as that family")
    }
    try checkpoint.require("activation_function", in: ["relu"], default: "relu")
    try checkpoint.require("position_embedding_type", in: ["sine", "learned"], default: "sine")
    self.init()
    backbone = try checkpoint.backboneConfig()
    hiddenDim = try checkpoint.value("d_model", default: 256)
    heads = try checkpoint.value("encoder_attention_heads", default: 8)
    encoderLayers = try checkpoint.value("encoder_layers", default: 6)
    decoderLayers = try checkpoint.value("decoder_layers", default: 6)
    feedForwardDim = try checkpoint.value("encoder_ffn_dim", default: 2048)
    let decoderHeads: Int = try checkpoint.value("decoder_attention_heads", default: heads)
    let decoderFeedForward: Int = try checkpoint.value("decoder_ffn_dim", default: feedForwardDim)
    guard decoderHeads == heads, decoderFeedForward == feedForwardDim else {
      throw CheckpointError(
        path: checkpoint.folder.path,
        problem: "fields 'decoder_attention_heads'/'decoder_ffn_dim' differ from the encoder's; swift-detr uses one value for both")
    }
    dropout = try checkpoint.value("dropout", default: 0.1)
    queries = try checkpoint.value("num_queries", default: 300)
    classCount = try checkpoint.classCount()
    learnedPositionEncoding = (try checkpoint.value("position_embedding_type", default: "sine")) == "learned"
    auxiliaryLoss = try checkpoint.value("auxiliary_loss", default: false)
    classCost = try checkpoint.value("class_cost", default: 2.0)
    boxCost = try checkpoint.value("bbox_cost", default: 5.0)
    giouCost = try checkpoint.value("giou_cost", default: 2.0)
    classLossWeight = try checkpoint.value("cls_loss_coefficient", default: 2.0)
    boxLossWeight = try checkpoint.value("bbox_loss_coefficient", default: 5.0)
    giouLossWeight = try checkpoint.value("giou_loss_coefficient", default: 2.0)
    focalAlpha = try checkpoint.value("focal_alpha", default: 0.25)
  }
}

extension ConditionalDETRModel {
  /// transformers' Conditional DETR keys → the reference's.
  public static let transformersKeys = KeyRenaming(
    rules: TransformersKeyRules.singleScaleShared + [
      // 4.x names (also what save_pretrained writes): the projections sit on the layer.
      .init(#"model\.decoder\.layers\.(\d+)\.((?:sa|ca)_\w+_proj)\.(.+)"#, "transformer.decoder.layers.{1}.{2}.{3}"),
      // 5.x names: inside the attention modules.
      .init(
        #"model\.decoder\.layers\.(\d+)\.self_attn\.(q|k)_(content|pos)_proj\.(.+)"#, "transformer.decoder.layers.{1}.sa_{2}{3}_proj.{4}"),
      .init(#"model\.decoder\.layers\.(\d+)\.self_attn\.v_proj\.(.+)"#, "transformer.decoder.layers.{1}.sa_v_proj.{2}"),
      .init(
        #"model\.decoder\.layers\.(\d+)\.self_attn\.(?:o_proj|out_proj)\.(.+)"#, "transformer.decoder.layers.{1}.self_attn.out_proj.{2}"),
      .init(
        #"model\.decoder\.layers\.(\d+)\.encoder_attn\.(q|k)_(content|pos)_proj\.(.+)"#, "transformer.decoder.layers.{1}.ca_{2}{3}_proj.{4}"
      ),
      .init(#"model\.decoder\.layers\.(\d+)\.encoder_attn\.q_pos_sine_proj\.(.+)"#, "transformer.decoder.layers.{1}.ca_qpos_sine_proj.{2}"),
      .init(#"model\.decoder\.layers\.(\d+)\.encoder_attn\.v_proj\.(.+)"#, "transformer.decoder.layers.{1}.ca_v_proj.{2}"),
      .init(
        #"model\.decoder\.layers\.(\d+)\.encoder_attn\.(?:o_proj|out_proj)\.(.+)"#, "transformer.decoder.layers.{1}.cross_attn.out_proj.{2}"
      ),
      .init(#"model\.decoder\.(query_scale|ref_point_head)\.(.+)"#, "transformer.decoder.{1}.{2}"),
    ])

  /// A Conditional DETR built from a transformers checkpoint folder, loaded strictly, in evaluation mode.
  public static func load(transformers checkpoint: TransformersCheckpoint) throws -> ConditionalDETRModel {
    let model = ConditionalDETRModel(config: try ConditionalDETRConfig(transformers: checkpoint))
    try TransformersKeyRules.load(
      TransformersKeyRules.referenceStateDict(checkpoint, rules: transformersKeys), into: model, from: checkpoint,
      family: "Conditional DETR")
    model.eval()
    return model
  }
}
