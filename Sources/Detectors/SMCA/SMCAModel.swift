import Detection
import Foundation
import Torch
import TorchNN

/// SMCA-DETR, single scale (Gao et al., ICCV 2021). Keys equal gaopengcuhk/SMCA-DETR's: DETR's
/// backbone, encoder, `query_embed`, `input_proj`, `class_embed`, `bbox_embed`, plus the decoder's
/// `transformer.decoder.layers.N.{norm4, point1 (layer 0), point2, point3}` (see `SMCADecoderLayer`).
///
/// Layer 0 predicts one centre per query from its normalized query embedding; every layer adds its own
/// per-head offsets and scales to place a Gaussian-like prior over the feature map, added to the
/// cross-attention logits. Boxes are predicted around the centre: the layer-0 centre logits are
/// added to the box head's (cx, cy) before the sigmoid, for every layer.
public final class SMCAModel: SingleScaleDetector {
  public let config: SMCAConfig
  let decoderLayers: ModuleList<SMCADecoderLayer>
  let decoderNorm: LayerNorm
  let classHead: Linear
  let boxHead: MLP
  /// The feature map's stride in pixels: centres are placed in its cells.
  let stride: Int

  public init(config: SMCAConfig) throws {
    try config.validate()
    self.config = config
    let t = config.transformer
    decoderLayers = ModuleList(
      (0..<t.decoderLayers).map {
        SMCADecoderLayer(
          dim: t.hiddenDim, heads: t.heads, feedForwardDim: t.feedForwardDim, dropout: t.dropout, predictsCentres: $0 == 0,
          scale: config.scale, smoothing: config.smoothing)
      })
    decoderNorm = LayerNorm(t.hiddenDim)
    classHead = Linear(t.hiddenDim, config.classCount + 1)
    boxHead = MLP(inputDim: t.hiddenDim, hiddenDim: t.hiddenDim, outputDim: 4, layerCount: 3)
    stride = config.backbone.dilation ? 16 : 32
    super.init(backbone: config.backbone, transformer: t, learnedPositionEncoding: false)
    let decoder = Module()
    decoder.registerModule("layers", decoderLayers)
    decoder.registerModule("norm", decoderNorm)
    transformer.registerModule("decoder", decoder)
    registerModule("class_embed", classHead)
    registerModule("bbox_embed", boxHead)
    resetParameters()
  }

  /// The official initialization: Xavier-uniform for every transformer matrix, scales starting at 1,
  /// classification biases at the prior probability 0.01.
  func resetParameters() {
    for (_, parameter) in transformer.namedParameters() where parameter.rank > 1 { Initialization.xavierUniform(parameter) }
    for layer in decoderLayers { layer.resetScaleHead() }
    Initialization.constant(classHead.bias!, -Foundation.log((1 - 0.01) / 0.01))
  }

  /// Each decoder layer's predictions: `logits [batch, queries, classes + 1]`, `boxes [batch, queries, 4]`
  /// (cx, cy, w, h) normalized to each image's unpadded size.
  public func predictions(for batch: DetectorBatch) -> DetectorOutput {
    let (memory, memoryPosition, memoryMask, mapSize) = encode(images: batch.images, paddingMask: batch.paddingMask)
    let queryPosition = queryPositions(batch: batch.count)
    let segments = [KeySegment(size: mapSize, stride: stride, distanceFactor: 1)]
    var target = queryPosition.zerosLike()
    var centres: Tensor?
    var centreLogits: Tensor?  // [batch, queries, 2]
    var outputs: [LayerPredictions] = []
    for layer in decoderLayers {
      let result = layer(
        target, memory: memory, queryPosition: queryPosition, memoryPosition: memoryPosition, memoryPaddingMask: memoryMask,
        segments: segments, centres: centres, imageSizes: batch.pixelSizes)
      target = result.output
      centres = result.centres
      if let logits = result.centreLogits { centreLogits = logits.transposed(0, 1) }
      let normalized = decoderNorm(target).transposed(0, 1)
      let raw = boxHead(normalized)
      let boxes = Tensor.cat([raw[.ellipsis, 0..<2] + centreLogits!, raw[.ellipsis, 2..<4]], dim: -1).sigmoid()
      outputs.append(LayerPredictions(logits: classHead(normalized), boxes: boxes))
    }
    return DetectorOutput(layers: outputs)
  }
}

extension SMCAModel: SetPredictionDetector {
  public var kind: ModelKind { .smcaDETR }
  public var usesAuxiliaryLoss: Bool { config.loss.auxiliaryLoss }
  public func encodedConfig() throws -> Data { try JSONEncoder().encode(config) }

  /// The official top-k over (query, class) pairs, with as many detections as queries; the extra
  /// class output is left out (it is never a target, and it names no category).
  public var postProcessing: PostProcessing { .sigmoidTopK(config.transformer.queries) }

  public func makeCriterion() -> SetCriterion {
    config.loss.criterion(classification: .focal(alpha: config.focalAlpha, gamma: 2), cost: .focal(alpha: config.focalAlpha, gamma: 2))
  }

  public func detect(_ batch: DetectorBatch) -> [ImageDetections] {
    let output = predictions(for: batch)
    let logits = output.final.logits[.ellipsis, 0..<config.classCount]
    return postProcessing(logits: logits, boxes: output.final.boxes, imageSizes: batch.outputSizes)
  }
}
