import Detection
import Torch
import TorchNN

/// DETR: a ResNet, a transformer encoder-decoder over its last feature map, and set prediction
/// heads. Keys equal facebookresearch/detr's (`backbone.0.body.*`, `transformer.*`, `class_embed`,
/// `bbox_embed`, `query_embed`, `input_proj`).
public final class DETRModel: SingleScaleDetector {
  public let config: DETRConfig
  let decoderLayers: ModuleList<TransformerDecoderLayer>
  let decoderNorm: LayerNorm
  let classHead: Linear
  let boxHead: MLP

  public init(config: DETRConfig) {
    self.config = config
    let d = config.transformer.hiddenDim
    decoderLayers = ModuleList(
      identicalCopies(count: config.transformer.decoderLayers) { _ in
        TransformerDecoderLayer(
          dim: d, heads: config.transformer.decoder.heads, feedForwardDim: config.transformer.decoder.feedForwardDim,
          dropout: config.transformer.dropout)
      })
    decoderNorm = LayerNorm(d)
    classHead = Linear(d, config.classCount + 1)
    boxHead = MLP(inputDim: d, hiddenDim: d, outputDim: 4, layerCount: 3)
    super.init(backbone: config.backbone, transformer: config.transformer, learnedPositionEncoding: config.learnedPositionEncoding)
    let decoder = Module()
    decoder.registerModule("layers", decoderLayers)
    decoder.registerModule("norm", decoderNorm)
    transformer.registerModule("decoder", decoder)
    registerModule("class_embed", classHead)
    registerModule("bbox_embed", boxHead)
    // The official `Transformer._reset_parameters`: Xavier-uniform for every matrix of the encoder and
    // decoder (the attentions' output projections and the feed-forward layers included). The heads,
    // query table and input projection keep PyTorch's defaults, as in the reference.
    for (_, parameter) in transformer.namedParameters() where parameter.rank > 1 { Initialization.xavierUniform(parameter) }
  }

  /// Predictions for `images [batch, 3, H, W]` (normalized) with `paddingMask [batch, H, W]` (true on padding):
  /// the final layer's, and each earlier decoder layer's for the auxiliary losses.
  public func callAsFunction(images: Tensor, paddingMask: Tensor) -> DetectorOutput {
    let (memory, memoryPosition, memoryMask, _) = encode(images: images, paddingMask: paddingMask)
    let queryPosition = queryPositions(batch: images.size(0))
    var target = queryPosition.zerosLike()
    var outputs: [LayerPredictions] = []
    for layer in decoderLayers {
      target = layer(target, memory: memory, queryPosition: queryPosition, memoryPosition: memoryPosition, memoryPaddingMask: memoryMask)
      // Heads see the normalized output; the next layer gets the raw one, as in the reference.
      let normalized = decoderNorm(target).transposed(0, 1)
      outputs.append(LayerPredictions(logits: classHead(normalized), boxes: boxHead(normalized).sigmoid()))
    }
    return DetectorOutput(layers: outputs)
  }
}
