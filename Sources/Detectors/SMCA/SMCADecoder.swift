import Detection
import Foundation
import Torch
import TorchNN

/// SMCA-DETR's decoder (`transformer.decoder`: `layers`, `norm`) with the prediction heads it feeds,
/// shared by the single- and multi-scale models.
final class SMCADecoder: Module {
  let layers: ModuleList<SMCADecoderLayer>
  let norm: LayerNorm

  init(config: SMCAConfig, segments: Int) {
    let t = config.transformer
    layers = ModuleList(
      (0..<t.decoderLayers).map {
        SMCADecoderLayer(
          dim: t.hiddenDim, heads: t.decoder.heads, feedForwardDim: t.decoder.feedForwardDim, dropout: t.dropout, predictsCentres: $0 == 0,
          scale: config.scale, smoothing: config.smoothing, segments: segments)
      })
    norm = LayerNorm(t.hiddenDim)
    super.init()
    registerModule("layers", layers)
    registerModule("norm", norm)
  }

  /// Each layer's predictions: `logits [batch, queries, classes + 1]`, `boxes [batch, queries, 4]`
  /// (cx, cy, w, h) normalized to each image, predicted around layer 0's centres (their logits are
  /// added to the box head's (cx, cy) before the sigmoid, for every layer).
  /// - `memory [tokens, batch, d]` (the segments' cells in order), `position` alike, `mask [batch, tokens]`;
  ///   `queryPosition [queries, batch, d]`; `imageSizes [1, batch, 2]` unpadded (width, height) in pixels.
  func callAsFunction(
    memory: Tensor, position: Tensor, mask: Tensor, segments: [KeySegment], queryPosition: Tensor, imageSizes: Tensor, classHead: Linear,
    boxHead: MLP
  ) -> DetectorOutput {
    var target = queryPosition.zerosLike()
    var centres: Tensor?
    var centreLogits: Tensor?  // [batch, queries, 2]
    var outputs: [LayerPredictions] = []
    for layer in layers {
      let result = layer(
        target, memory: memory, queryPosition: queryPosition, memoryPosition: position, memoryPaddingMask: mask, segments: segments,
        centres: centres, imageSizes: imageSizes)
      target = result.output
      centres = result.centres
      if let logits = result.centreLogits { centreLogits = logits.transposed(0, 1) }
      let normalized = norm(target).transposed(0, 1)
      let raw = boxHead(normalized)
      let boxes = Tensor.cat([raw[.ellipsis, 0..<2] + centreLogits!, raw[.ellipsis, 2..<4]], dim: -1).sigmoid()
      outputs.append(LayerPredictions(logits: classHead(normalized), boxes: boxes))
    }
    return DetectorOutput(layers: outputs)
  }

  /// The official initialization of what the decoder adds: scales starting at 1.
  func resetScaleHeads() {
    for layer in layers { layer.resetScaleHead() }
  }
}

/// What both SMCA-DETR models share as detectors: the config, the focal criterion, the top-k
/// post-processing without the extra class output.
protocol SMCADetector: SetPredictionDetector {
  var config: SMCAConfig { get }
}

extension SMCADetector {
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
