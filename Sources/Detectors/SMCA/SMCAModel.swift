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
/// cross-attention logits. Boxes are predicted around the centre (see `SMCADecoder`).
public final class SMCAModel: SingleScaleDetector, SMCADetector {
  public let config: SMCAConfig
  let decoder: SMCADecoder
  let classHead: Linear
  let boxHead: MLP
  /// The feature map's stride in pixels: centres are placed in its cells.
  let stride: Int

  public init(config: SMCAConfig) throws {
    try config.validate()
    guard config.encoder == .singleScale else { throw ConfigError("SMCAModel is the single-scale model; use SMCAMultiScaleModel") }
    self.config = config
    let t = config.transformer
    decoder = SMCADecoder(config: config, segments: 1)
    classHead = Linear(t.hiddenDim, config.classCount + 1)
    boxHead = MLP(inputDim: t.hiddenDim, hiddenDim: t.hiddenDim, outputDim: 4, layerCount: 3)
    stride = config.backbone.dilation ? 16 : 32
    super.init(backbone: config.backbone, transformer: t, learnedPositionEncoding: false)
    transformer.registerModule("decoder", decoder)
    registerModule("class_embed", classHead)
    registerModule("bbox_embed", boxHead)
    resetParameters()
  }

  /// The official initialization: Xavier-uniform for every transformer matrix, scales starting at 1,
  /// classification biases at the prior probability 0.01.
  func resetParameters() {
    for (_, parameter) in transformer.namedParameters() where parameter.rank > 1 { Initialization.xavierUniform(parameter) }
    decoder.resetScaleHeads()
    Initialization.constant(classHead.bias!, -Foundation.log((1 - 0.01) / 0.01))
  }

  /// Each decoder layer's predictions: `logits [batch, queries, classes + 1]`, `boxes [batch, queries, 4]`
  /// (cx, cy, w, h) normalized to each image's unpadded size.
  public func predictions(for batch: DetectorBatch) -> DetectorOutput {
    let (memory, position, mask, mapSize) = encode(images: batch.images, paddingMask: batch.paddingMask)
    return decoder(
      memory: memory, position: position, mask: mask, segments: [KeySegment(size: mapSize, stride: stride, distanceFactor: 1)],
      queryPosition: queryPositions(batch: batch.count), imageSizes: batch.pixelSizes, classHead: classHead, boxHead: boxHead)
  }
}
