import Detection
import Torch
import TorchNN

extension DETRConfig {
  /// The config of a transformers DETR checkpoint (`model_type` "detr").
  public init(transformers checkpoint: TransformersCheckpoint) throws {
    try checkpoint.requireFamily("detr", name: "DETR", positionEncodings: ["sine", "learned"])
    self.init()
    backbone = try checkpoint.backboneConfig()
    transformer = try checkpoint.transformerSettings(defaultFeedForward: 2048, defaultQueries: 100)
    classCount = try checkpoint.classCount()
    learnedPositionEncoding = (try checkpoint.value("position_embedding_type", default: "sine")) == "learned"
    loss = try checkpoint.lossSettings(loss, classWeightField: nil)
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
