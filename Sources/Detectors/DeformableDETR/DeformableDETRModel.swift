import Detection
import Foundation
import Torch
import TorchNN

/// Deformable DETR with its variants (single-scale, multi-scale, box refinement, two-stage). Keys
/// equal fundamentalvision/Deformable-DETR's; shared heads are registered under every index (and
/// under `transformer.decoder` with refinement or two-stage), as the reference's state dict lists them.
public final class DeformableDETRModel: Module {
  public let config: DeformableDETRConfig
  let body: ResNet
  let inputProjections: ModuleList<Sequential>
  let levelEmbedding: Tensor
  let encoderLayers: ModuleList<DeformableEncoderLayer>
  let decoderLayers: ModuleList<DeformableDecoderLayer>
  let classHeads: ModuleList<Linear>
  let boxHeads: ModuleList<MLP>
  let queryEmbedding: Embedding?
  let referencePointHead: Linear?
  let encoderOutput: Linear?
  let encoderOutputNorm: LayerNorm?
  let proposalProjection: Linear?
  let proposalProjectionNorm: LayerNorm?

  public init(config: DeformableDETRConfig) {
    precondition(config.featureLevels >= config.backboneStages.count, "Deformable DETR: fewer feature levels than backbone stages")
    self.config = config
    let d = config.transformer.hiddenDim
    body = config.backbone.makeResNet()
    var projections: [Sequential] = config.backboneStages.map {
      Sequential([Conv2d(config.backbone.stageChannels[$0 - 1], d, kernelSize: 1), GroupNorm(groups: 32, channels: d)])
    }
    var inChannels = config.backbone.stageChannels[config.backboneStages.last! - 1]
    for _ in config.backboneStages.count..<config.featureLevels {
      projections.append(Sequential([Conv2d(inChannels, d, kernelSize: 3, stride: 2, padding: 1), GroupNorm(groups: 32, channels: d)]))
      inChannels = d
    }
    for projection in projections {
      let convolution = projection.layers[0] as! Conv2d
      Initialization.xavierUniform(convolution.weight)
      Initialization.constant(convolution.bias!, 0)
    }
    inputProjections = ModuleList(projections)
    levelEmbedding = Tensor.empty([config.featureLevels, d])
    Initialization.normal(levelEmbedding)
    encoderLayers = ModuleList(
      identicalCopies(count: config.transformer.encoderLayers) { _ in
        DeformableEncoderLayer(
          dim: d, heads: config.transformer.encoder.heads, levels: config.featureLevels, points: config.encoderPoints,
          feedForwardDim: config.transformer.encoder.feedForwardDim,
          dropout: config.transformer.dropout)
      })
    decoderLayers = ModuleList(
      identicalCopies(count: config.transformer.decoderLayers) { _ in
        DeformableDecoderLayer(
          dim: d, heads: config.transformer.decoder.heads, levels: config.featureLevels, points: config.decoderPoints,
          feedForwardDim: config.transformer.decoder.feedForwardDim,
          dropout: config.transformer.dropout)
      })
    // One head per decoder layer (+ one for the proposals); clones with refinement, one shared head without.
    let headCount = config.transformer.decoderLayers + (config.twoStage ? 1 : 0)
    let prior = -Foundation.log((1 - 0.01) / 0.01)
    func makeClassHead() -> Linear {
      let head = Linear(d, config.classCount)
      Initialization.constant(head.bias!, prior)
      return head
    }
    func makeBoxHead() -> MLP {
      let head = MLP(inputDim: d, hiddenDim: d, outputDim: 4, layerCount: 3)
      Initialization.constant(head.layers[2].weight, 0)
      Initialization.constant(head.layers[2].bias!, 0)
      return head
    }
    if config.boxRefinement {
      // The reference deep-copies one head per prediction (`_get_clones`): every layer starts equal.
      classHeads = ModuleList(identicalCopies(count: headCount) { _ in makeClassHead() })
      boxHeads = ModuleList(identicalCopies(count: headCount) { _ in makeBoxHead() })
    } else {
      let (classHead, boxHead) = (makeClassHead(), makeBoxHead())
      classHeads = ModuleList(Array(repeating: classHead, count: headCount))
      boxHeads = ModuleList(Array(repeating: boxHead, count: headCount))
    }
    if !config.twoStage {
      // The reference sets the first head's size bias to -2 after cloning, so the clones keep 0.
      let firstBias = boxHeads.modules[0].layers[2].bias!
      withNoGrad { firstBias[2..<4] = Tensor.full([2], -2.0) }
    }
    if config.twoStage {
      (queryEmbedding, referencePointHead) = (nil, nil)
      encoderOutput = Linear(d, d)
      encoderOutputNorm = LayerNorm(d)
      proposalProjection = Linear(2 * d, 2 * d)
      proposalProjectionNorm = LayerNorm(2 * d)
    } else {
      queryEmbedding = Embedding(config.transformer.queries, 2 * d)
      let reference = Linear(d, 2)
      Initialization.xavierUniform(reference.weight)
      Initialization.constant(reference.bias!, 0)
      referencePointHead = reference
      (encoderOutput, encoderOutputNorm, proposalProjection, proposalProjectionNorm) = (nil, nil, nil, nil)
    }
    super.init()
    let backbone = Module()
    let backboneBody = Module()
    backboneBody.registerModule("body", body)
    backbone.registerModule("0", backboneBody)
    let transformer = Module()
    transformer.registerParameter("level_embed", levelEmbedding)
    let encoder = Module()
    encoder.registerModule("layers", encoderLayers)
    let decoder = Module()
    decoder.registerModule("layers", decoderLayers)
    if config.boxRefinement { decoder.registerModule("bbox_embed", boxHeads) }
    if config.twoStage { decoder.registerModule("class_embed", classHeads) }
    transformer.registerModule("encoder", encoder)
    transformer.registerModule("decoder", decoder)
    if let referencePointHead { transformer.registerModule("reference_points", referencePointHead) }
    if let encoderOutput, let encoderOutputNorm, let proposalProjection, let proposalProjectionNorm {
      transformer.registerModule("enc_output", encoderOutput)
      transformer.registerModule("enc_output_norm", encoderOutputNorm)
      transformer.registerModule("pos_trans", proposalProjection)
      transformer.registerModule("pos_trans_norm", proposalProjectionNorm)
    }
    registerModule("transformer", transformer)
    registerModule("class_embed", classHeads)
    registerModule("bbox_embed", boxHeads)
    if let queryEmbedding { registerModule("query_embed", queryEmbedding) }
    registerModule("input_proj", inputProjections)
    registerModule("backbone", backbone)
    resetTransformer(transformer)
  }

  /// The reference's `DeformableTransformer._reset_parameters`: Xavier-uniform for every matrix of the
  /// transformer (feed-forward layers, the decoder's self-attention, the two-stage projections), then
  /// the deformable attentions' own initialization, the reference-point head, the level embedding.
  /// The prediction heads the decoder holds for refinement are not the transformer's and keep theirs.
  private func resetTransformer(_ transformer: Module) {
    for (name, parameter) in transformer.namedParameters()
    where parameter.rank > 1 && !name.hasPrefix("decoder.bbox_embed.") && !name.hasPrefix("decoder.class_embed.") {
      Initialization.xavierUniform(parameter)
    }
    for case let (_, attention as MultiScaleDeformableAttention) in transformer.namedModules() { attention.resetParameters() }
    if let referencePointHead {
      Initialization.xavierUniform(referencePointHead.weight)
      Initialization.constant(referencePointHead.bias!, 0)
    }
    Initialization.normal(levelEmbedding)
  }
}
