import Detection
import Torch
import TorchNN

/// DETR: a ResNet, a transformer encoder-decoder over its last feature map, and set prediction
/// heads. Keys equal facebookresearch/detr's (`backbone.0.body.*`, `transformer.*`, `class_embed`,
/// `bbox_embed`, `query_embed`, `input_proj`).
public final class DETRModel: Module {
  public let config: DETRConfig
  let body: ResNet
  let learnedPosition: LearnedPositionEncoding?
  let inputProjection: Conv2d
  let queryEmbedding: Embedding
  let encoderLayers: ModuleList<TransformerEncoderLayer>
  let decoderLayers: ModuleList<TransformerDecoderLayer>
  let decoderNorm: LayerNorm
  let classHead: Linear
  let boxHead: MLP

  public init(config: DETRConfig) {
    self.config = config
    let d = config.hiddenDim
    body = config.backbone.makeResNet()
    learnedPosition = config.learnedPositionEncoding ? LearnedPositionEncoding(featuresPerAxis: d / 2) : nil
    inputProjection = Conv2d(config.backbone.stageChannels[3], d, kernelSize: 1)
    queryEmbedding = Embedding(config.queries, d)
    encoderLayers = ModuleList(
      (0..<config.encoderLayers).map { _ in
        TransformerEncoderLayer(dim: d, heads: config.heads, feedForwardDim: config.feedForwardDim, dropout: config.dropout)
      })
    decoderLayers = ModuleList(
      (0..<config.decoderLayers).map { _ in
        TransformerDecoderLayer(dim: d, heads: config.heads, feedForwardDim: config.feedForwardDim, dropout: config.dropout)
      })
    decoderNorm = LayerNorm(d)
    classHead = Linear(d, config.classCount + 1)
    boxHead = MLP(inputDim: d, hiddenDim: d, outputDim: 4, layerCount: 3)
    super.init()
    // The reference wraps the ResNet as backbone[0].body and the position encoding as backbone[1].
    let backbone = Module()
    let backboneBody = Module()
    backboneBody.registerModule("body", body)
    backbone.registerModule("0", backboneBody)
    if let learnedPosition { backbone.registerModule("1", learnedPosition) }
    let transformer = Module()
    let encoder = Module()
    encoder.registerModule("layers", encoderLayers)
    let decoder = Module()
    decoder.registerModule("layers", decoderLayers)
    decoder.registerModule("norm", decoderNorm)
    transformer.registerModule("encoder", encoder)
    transformer.registerModule("decoder", decoder)
    registerModule("transformer", transformer)
    registerModule("class_embed", classHead)
    registerModule("bbox_embed", boxHead)
    registerModule("query_embed", queryEmbedding)
    registerModule("input_proj", inputProjection)
    registerModule("backbone", backbone)
  }

  /// Predictions for `images [batch, 3, H, W]` (normalized) with `paddingMask [batch, H, W]` (true on padding):
  /// the final layer's, and each earlier decoder layer's for the auxiliary losses.
  public func callAsFunction(images: Tensor, paddingMask: Tensor) -> (final: LayerPredictions, auxiliary: [LayerPredictions]) {
    let features = body(images, stagesOut: [4])[0]
    let (batch, height, width) = (features.size(0), features.size(2), features.size(3))
    let mask = downsample(paddingMask: paddingMask, to: (height, width))
    let position =
      learnedPosition.map { $0(batch: batch, height: height, width: width) }
      ?? SinePositionEncoding(featuresPerAxis: config.hiddenDim / 2)(paddingMask: mask)
    // [batch, d, h, w] -> [h·w, batch, d]
    var memory = inputProjection(features).flattened(from: 2).permuted(2, 0, 1)
    let memoryPosition = position.flattened(from: 2).permuted(2, 0, 1)
    let memoryMask = mask.flattened(from: 1)
    for layer in encoderLayers { memory = layer(memory, position: memoryPosition, keyPaddingMask: memoryMask) }

    let queryPosition = queryEmbedding.weight.unsqueezed(dim: 1).expanded(to: [config.queries, batch, config.hiddenDim])
    var target = queryPosition.zerosLike()
    var outputs: [LayerPredictions] = []
    for layer in decoderLayers {
      target = layer(target, memory: memory, queryPosition: queryPosition, memoryPosition: memoryPosition, memoryPaddingMask: memoryMask)
      // Heads see the normalized output; the next layer gets the raw one, as in the reference.
      let normalized = decoderNorm(target).transposed(0, 1)
      outputs.append(LayerPredictions(logits: classHead(normalized), boxes: boxHead(normalized).sigmoid()))
    }
    return (outputs.last!, Array(outputs.dropLast()))
  }
}
