import Detection
import Foundation
import Torch
import TorchNN

/// DINO as detrex builds it. Keys equal detrex's `state_dict` (`neck.convs.0.conv.weight`,
/// `transformer.encoder.layers.0.attentions.0.sampling_offsets.weight`, `class_embed.6.bias`,
/// `label_enc.weight`, ...) except the backbone, which has torchvision's ResNet keys under
/// `backbone.` (`DINOModel.detrexKeys` renames detectron2's), and the decoder's second names for the
/// heads (`transformer.decoder.class_embed.*`), which detrex lists twice and we once.
public final class DINOModel: Module {
  public let config: DINOConfig
  let body: ResNet
  let neck: ChannelMapper
  let levelEmbedding: Tensor
  let encoderLayers: ModuleList<DetrexDeformableEncoderLayer>
  let decoderLayers: ModuleList<DetrexDeformableDecoderLayer>
  /// The query position MLP over the sine embedding of each query's reference box (`ref_point_head`).
  let queryPositionHead: MLP
  let decoderNorm: LayerNorm
  /// The learned content of the matching queries (`tgt_embed`).
  let contentQueries: Embedding
  let encoderOutput: Linear
  let encoderOutputNorm: LayerNorm
  /// One head per decoder layer, and the last for the encoder's proposals.
  let classHeads: ModuleList<Linear>
  let boxHeads: ModuleList<MLP>
  /// The label embedding of the denoising queries (`label_enc`).
  let labelEmbedding: Embedding
  /// Replaces the random draws of the denoising noise (for parity tests that feed a reference's
  /// noised targets); nil draws from the default generator.
  public var denoisingNoiseOverride: (@Sendable ([MatchTarget], DenoisingGroups) -> NoisedTargets)?

  public init(config: DINOConfig) {
    precondition(config.featureLevels >= config.backboneStages.count, "DINO: fewer feature levels than backbone stages")
    self.config = config
    let d = config.transformer.hiddenDim
    let settings = config.transformer
    body = config.backbone.makeResNet()
    neck = ChannelMapper(
      inputChannels: config.backboneStages.map { config.backbone.stageChannels[$0 - 1] }, outputChannels: d, levels: config.featureLevels)
    encoderLayers = ModuleList(
      (0..<settings.encoderLayers).map { _ in
        DetrexDeformableEncoderLayer(
          dim: d, heads: settings.heads, levels: config.featureLevels, points: config.encoderPoints, feedForwardDim: settings.feedForwardDim,
          dropout: settings.dropout)
      })
    decoderLayers = ModuleList(
      (0..<settings.decoderLayers).map { _ in
        DetrexDeformableDecoderLayer(
          dim: d, heads: settings.heads, levels: config.featureLevels, points: config.decoderPoints, feedForwardDim: settings.feedForwardDim,
          dropout: settings.dropout)
      })
    queryPositionHead = MLP(inputDim: 2 * d, hiddenDim: d, outputDim: d, layerCount: 2)
    decoderNorm = LayerNorm(d)
    contentQueries = Embedding(settings.queries, d)
    encoderOutput = Linear(d, d)
    encoderOutputNorm = LayerNorm(d)
    levelEmbedding = Tensor.empty([config.featureLevels, d])
    // detrex: Xavier on every matrix of the transformer, the deformable attention's own scheme
    // after that, level embeddings from N(0, 1).
    let transformerModules: [Module] = Array(encoderLayers) + Array(decoderLayers) + [queryPositionHead, contentQueries, encoderOutput]
    for module in transformerModules {
      for (_, parameter) in module.namedParameters() where parameter.rank > 1 { Initialization.xavierUniform(parameter) }
    }
    for layer in encoderLayers { layer.attention.resetParameters() }
    for layer in decoderLayers { layer.crossAttention.resetParameters() }
    Initialization.normal(levelEmbedding)
    // Heads: class bias for a prior probability of 0.01, box regressions starting at zero.
    let priorBias = -Foundation.log((1 - 0.01) / 0.01)
    classHeads = ModuleList(
      (0...settings.decoderLayers).map { _ in
        let head = Linear(d, config.classCount)
        Initialization.constant(head.bias!, priorBias)
        return head
      })
    boxHeads = ModuleList(
      (0...settings.decoderLayers).map { _ in
        let head = MLP(inputDim: d, hiddenDim: d, outputDim: 4, layerCount: 3)
        Initialization.constant(head.layers.last!.weight, 0)
        Initialization.constant(head.layers.last!.bias!, 0)
        return head
      })
    labelEmbedding = Embedding(config.classCount, d)
    super.init()
    registerModule("backbone", body)
    registerModule("neck", neck)
    let transformer = Module()
    transformer.registerParameter("level_embeds", levelEmbedding)
    transformer.registerModule(atPath: "encoder.layers", encoderLayers)
    transformer.registerModule(atPath: "decoder.layers", decoderLayers)
    transformer.registerModule(atPath: "decoder.ref_point_head", queryPositionHead)
    transformer.registerModule(atPath: "decoder.norm", decoderNorm)
    transformer.registerModule("tgt_embed", contentQueries)
    transformer.registerModule("enc_output", encoderOutput)
    transformer.registerModule("enc_output_norm", encoderOutputNorm)
    registerModule("transformer", transformer)
    registerModule("class_embed", classHeads)
    registerModule("bbox_embed", boxHeads)
    registerModule("label_enc", labelEmbedding)
  }

  var denoising: ContrastiveDenoising {
    ContrastiveDenoising(
      queryCount: config.denoisingQueries, labelNoiseRatio: config.labelNoiseRatio, boxNoiseScale: config.boxNoiseScale,
      classCount: config.classCount)
  }
}
