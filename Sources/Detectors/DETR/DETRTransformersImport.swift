import Detection
import Torch
import TorchNN

extension DETRConfig {
  /// The config of a transformers DETR checkpoint (`model_type` "detr").
  public init(transformers checkpoint: TransformersCheckpoint) throws {
    guard checkpoint.modelType == "detr" else {
      throw CheckpointError(
        path: checkpoint.folder.path, problem: "holds a \"\(checkpoint.modelType ?? "?")\" model, not DETR; load it as that family")
    }
    try checkpoint.require("activation_function", in: ["relu"], default: "relu")
    try checkpoint.require("position_embedding_type", in: ["sine", "learned"], default: "sine")
    self.init()
    backbone = try checkpoint.backboneConfig()
    hiddenDim = try checkpoint.value("d_model", default: 256)
    heads = try checkpoint.value("encoder_attention_heads", default: 8)
    let decoderHeads: Int = try checkpoint.value("decoder_attention_heads", default: heads)
    let decoderFeedForward: Int = try checkpoint.value("decoder_ffn_dim", default: 2048)
    encoderLayers = try checkpoint.value("encoder_layers", default: 6)
    decoderLayers = try checkpoint.value("decoder_layers", default: 6)
    feedForwardDim = try checkpoint.value("encoder_ffn_dim", default: 2048)
    guard decoderHeads == heads, decoderFeedForward == feedForwardDim else {
      throw CheckpointError(
        path: checkpoint.folder.path,
        problem: "fields 'decoder_attention_heads'/'decoder_ffn_dim' differ from the encoder's; swift-detr's DETR uses one value for both")
    }
    dropout = try checkpoint.value("dropout", default: 0.1)
    queries = try checkpoint.value("num_queries", default: 100)
    classCount = try checkpoint.classCount()
    learnedPositionEncoding = (try checkpoint.value("position_embedding_type", default: "sine")) == "learned"
    auxiliaryLoss = try checkpoint.value("auxiliary_loss", default: false)
    classCost = try checkpoint.value("class_cost", default: 1.0)
    boxCost = try checkpoint.value("bbox_cost", default: 5.0)
    giouCost = try checkpoint.value("giou_cost", default: 2.0)
    boxLossWeight = try checkpoint.value("bbox_loss_coefficient", default: 5.0)
    giouLossWeight = try checkpoint.value("giou_loss_coefficient", default: 2.0)
    noObjectWeight = try checkpoint.value("eos_coefficient", default: 0.1)
  }
}

extension DETRModel {
  /// transformers' DETR keys → the reference's.
  public static let transformersKeys = KeyRenaming(
    rules: TransformersKeyRules.singleScaleShared + [
      .init(#"model\.decoder\.layers\.(\d+)\.self_attn\.(q|k|v)_proj\.(.+)"#, "transformer.decoder.layers.{1}.self_attn.{2}_proj.{3}"),
      .init(
        #"model\.decoder\.layers\.(\d+)\.self_attn\.(?:o_proj|out_proj)\.(.+)"#, "transformer.decoder.layers.{1}.self_attn.out_proj.{2}"),
      .init(
        #"model\.decoder\.layers\.(\d+)\.encoder_attn\.(q|k|v)_proj\.(.+)"#, "transformer.decoder.layers.{1}.multihead_attn.{2}_proj.{3}"),
      .init(
        #"model\.decoder\.layers\.(\d+)\.encoder_attn\.(?:o_proj|out_proj)\.(.+)"#,
        "transformer.decoder.layers.{1}.multihead_attn.out_proj.{2}"),
    ])

  /// A DETR built from a transformers checkpoint folder, with every weight loaded (strictly), in evaluation mode.
  public static func load(transformers checkpoint: TransformersCheckpoint) throws -> DETRModel {
    let model = DETRModel(config: try DETRConfig(transformers: checkpoint))
    try TransformersKeyRules.load(
      TransformersKeyRules.referenceStateDict(checkpoint, rules: transformersKeys), into: model, from: checkpoint, family: "DETR")
    model.eval()
    return model
  }
}
