import Detection
import Torch
import TorchNN

extension ConditionalDETRConfig {
  /// The config of a transformers Conditional DETR checkpoint (`model_type` "conditional_detr").
  public init(transformers checkpoint: TransformersCheckpoint) throws {
    try checkpoint.requireFamily("conditional_detr", name: "Conditional DETR", positionEncodings: ["sine", "learned"])
    self.init()
    backbone = try checkpoint.backboneConfig()
    transformer = try checkpoint.transformerSettings(defaultFeedForward: 2048, defaultQueries: 300)
    classCount = try checkpoint.classCount()
    learnedPositionEncoding = (try checkpoint.value("position_embedding_type", default: "sine")) == "learned"
    loss = try checkpoint.lossSettings(loss, classWeightField: "cls_loss_coefficient")
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
