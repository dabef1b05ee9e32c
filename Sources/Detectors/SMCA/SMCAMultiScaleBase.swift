import Detection
import Foundation
import Torch
import TorchNN

/// What the two multi-scale SMCA-DETR models share: the ResNet (`backbone.0.body`), the level
/// embedding (`transformer.level_embed`), the decoder, the query table and the heads; the maps'
/// padding masks and positions; decoding a list of key segments. Subclasses add their projections
/// and encoder, and are the detectors (`SMCADetector`).
public class SMCAMultiScaleBase: Module {
  public let config: SMCAConfig
  let body: ResNet
  let levelEmbedding: Tensor
  let decoder: SMCADecoder
  let queryEmbedding: Embedding
  let classHead: Linear
  let boxHead: MLP
  /// The `transformer` container; subclasses register their encoder in it.
  let transformer = Module()

  init(config: SMCAConfig, levels: Int, segments: Int) throws {
    try config.validate()
    guard !config.backbone.dilation else { throw ConfigError("backbone.dilation: the multi-scale SMCA-DETR needs strides up to 64, not DC5") }
    self.config = config
    let d = config.transformer.hiddenDim
    body = config.backbone.makeResNet()
    levelEmbedding = Tensor.empty([levels, d])
    decoder = SMCADecoder(config: config, segments: segments)
    queryEmbedding = Embedding(config.transformer.queries, d)
    classHead = Linear(d, config.classCount + 1)
    boxHead = MLP(inputDim: d, hiddenDim: d, outputDim: 4, layerCount: 3)
    super.init()
    transformer.registerModule("decoder", decoder)
    transformer.registerParameter("level_embed", levelEmbedding)
    registerModule("transformer", transformer)
    registerModule("class_embed", classHead)
    registerModule("bbox_embed", boxHead)
    registerModule("query_embed", queryEmbedding)
    let backbone = Module()
    let backboneBody = Module()
    backboneBody.registerModule("body", body)
    backbone.registerModule("0", backboneBody)
    registerModule("backbone", backbone)
  }

  /// The official initialization, once the subclass has registered its encoder: Xavier-uniform for the
  /// transformer's matrices (`except` those created after it in the official code), scales at 1, the
  /// level embedding normal, the class prior 0.01.
  func resetParameters(except excluded: Set<String> = []) {
    for (name, parameter) in transformer.namedParameters() where parameter.rank > 1 && !excluded.contains(name) {
      Initialization.xavierUniform(parameter)
    }
    decoder.resetScaleHeads()
    Initialization.normal(levelEmbedding)
    Initialization.constant(classHead.bias!, -Foundation.log((1 - 0.01) / 0.01))
  }

  /// Each map's padding mask (nearest from the image's; the last map's from the one before it, as the
  /// last map is made from that one) and position (sine plus its level embedding), `maps` finest first.
  func masksAndPositions(of maps: [Tensor], paddingMask: Tensor) -> (masks: [Tensor], positions: [Tensor]) {
    let d = config.transformer.hiddenDim
    var masks = maps.dropLast().map { downsample(paddingMask: paddingMask, to: ($0.size(2), $0.size(3))) }
    masks.append(downsample(paddingMask: masks.last!, to: (maps.last!.size(2), maps.last!.size(3))))
    let sine = SinePositionEncoding(featuresPerAxis: d / 2)
    let positions = masks.enumerated().map { level, mask in sine(paddingMask: mask) + levelEmbedding[level].view(1, d, 1, 1) }
    return (masks, positions)
  }

  /// Decodes key segments given as `[batch, d, h, w]` maps with their positions (alike) and masks
  /// (`[batch, h, w]`).
  func decode(segments: [(map: Tensor, position: Tensor, mask: Tensor, segment: KeySegment)], batch: DetectorBatch) -> DetectorOutput {
    let tokens = { (map: Tensor) in map.flattened(from: 2).permuted(2, 0, 1) }  // [h·w, batch, d]
    let d = config.transformer.hiddenDim
    return decoder(
      memory: Tensor.cat(segments.map { tokens($0.map) }, dim: 0), position: Tensor.cat(segments.map { tokens($0.position) }, dim: 0),
      mask: Tensor.cat(segments.map { $0.mask.flattened(from: 1) }, dim: 1), segments: segments.map(\.segment),
      queryPosition: queryEmbedding.weight.unsqueezed(dim: 1).expanded(to: [config.transformer.queries, batch.count, d]),
      imageSizes: batch.pixelSizes, classHead: classHead, boxHead: boxHead)
  }
}
