import Detection
import Torch
import TorchNN

/// Conditional DETR. Keys equal Atten4Vis/ConditionalDETR's: DETR's backbone, encoder and
/// `query_embed`, plus `transformer.decoder.{layers, norm, query_scale, ref_point_head}`, `class_embed`, `bbox_embed`.
public final class ConditionalDETRModel: SingleScaleDetector {
  public let config: ConditionalDETRConfig
  let decoderLayers: ModuleList<ConditionalDecoderLayer>
  let decoderNorm: LayerNorm
  let queryScale: MLP
  let referencePointHead: MLP
  let classHead: Linear
  let boxHead: MLP

  public init(config: ConditionalDETRConfig) {
    self.config = config
    let d = config.transformer.hiddenDim
    decoderLayers = ModuleList(
      identicalCopies(count: config.transformer.decoderLayers) {
        ConditionalDecoderLayer(
          dim: d, heads: config.transformer.decoder.heads, feedForwardDim: config.transformer.decoder.feedForwardDim,
          dropout: config.transformer.dropout,
          isFirst: $0 == 0)
      })
    decoderNorm = LayerNorm(d)
    queryScale = MLP(inputDim: d, hiddenDim: d, outputDim: d, layerCount: 2)
    referencePointHead = MLP(inputDim: d, hiddenDim: d, outputDim: 2, layerCount: 2)
    classHead = Linear(d, config.classCount)
    boxHead = MLP(inputDim: d, hiddenDim: d, outputDim: 4, layerCount: 3)
    super.init(backbone: config.backbone, transformer: config.transformer, learnedPositionEncoding: config.learnedPositionEncoding)
    let decoder = Module()
    decoder.registerModule("layers", decoderLayers)
    decoder.registerModule("norm", decoderNorm)
    decoder.registerModule("query_scale", queryScale)
    decoder.registerModule("ref_point_head", referencePointHead)
    transformer.registerModule("decoder", decoder)
    registerConditionalHeads(classHead: classHead, boxHead: boxHead)
  }

  /// Predictions for `images [batch, 3, H, W]` with `paddingMask [batch, H, W]` (true on padding).
  public func callAsFunction(images: Tensor, paddingMask: Tensor) -> DetectorOutput {
    let (memory, memoryPosition, memoryMask, _) = encode(images: images, paddingMask: paddingMask)
    let queryPosition = queryPositions(batch: images.size(0))
    // Reference points (x, y), the same for every layer: [queries, batch, 2].
    let reference = referencePointHead(queryPosition).sigmoid()
    let sine = sineEmbedding(ofPoints: reference, featuresPerAxis: config.transformer.hiddenDim / 2)
    let referenceLogits = reference.transposed(0, 1).inverseSigmoid()
    var target = queryPosition.zerosLike()
    var outputs: [LayerPredictions] = []
    for (index, layer) in decoderLayers.enumerated() {
      // The spatial query is scaled by a function of the previous layer's (un-normalized) output.
      let querySine = index == 0 ? sine : sine * queryScale(target)
      target = layer(
        target, memory: memory, memoryPosition: memoryPosition, memoryMask: memoryMask, queryPosition: queryPosition, querySine: querySine)
      let normalized = decoderNorm(target).transposed(0, 1)
      let offsets = boxHead(normalized)
      let boxes = Tensor.cat([offsets[.ellipsis, 0..<2] + referenceLogits, offsets[.ellipsis, 2..<4]], dim: -1).sigmoid()
      outputs.append(LayerPredictions(logits: classHead(normalized), boxes: boxes))
    }
    return DetectorOutput(layers: outputs)
  }
}
