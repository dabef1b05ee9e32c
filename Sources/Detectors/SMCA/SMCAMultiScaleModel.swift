import Detection
import Foundation
import Torch
import TorchNN

/// The released multi-scale SMCA-DETR (the official `Multi_scale_SMCA.zip`, `transformer_44_dot_4.py`:
/// 44.4 AP with R50 at 50 epochs). Keys equal the official ones: `backbone.0.body` (the ResNet),
/// `input_proj_512`, `input_proj_1024`, `input_proj_2048` (1×1 from C3, C4, C5), `input_proj_2048_3`
/// (3×3, stride 2, from C5: the stride-64 map), `transformer.level_embed` `[4, d]`,
/// `transformer.encoder.layers` (`SMCADepthwiseEncoderLayer`), `transformer.conv` (3×3, stride 2: the
/// encoded stride-8 map brought to stride 16), `transformer.decoder`, `query_embed`, `class_embed`,
/// `bbox_embed`.
///
/// The decoder attends to four key segments: the stride-8 map brought to 16, and the maps of strides
/// 16, 32 and 64, with the positions of strides 16, 16, 32, 64 (level embeddings 1, 1, 2, 3) and
/// distance factors 0.5, 0.5, 1, 2; each segment has its own prior and softmax, weighted per query by
/// scale-selection attention.
public final class SMCAMultiScaleModel: Module, SMCADetector {
  public let config: SMCAConfig
  let body: ResNet
  let inputProjections: [Conv2d]
  let coarsestProjection: Conv2d
  let levelEmbedding: Tensor
  let encoderLayers: ModuleList<SMCADepthwiseEncoderLayer>
  let fineToMiddle: Conv2d
  let decoder: SMCADecoder
  let queryEmbedding: Embedding
  let classHead: Linear
  let boxHead: MLP
  /// The strides of the four maps, finest first.
  static let strides = [8, 16, 32, 64]

  public init(config: SMCAConfig) throws {
    try config.validate()
    guard config.encoder == .depthwiseMultiScale else { throw ConfigError("SMCAMultiScaleModel is the multi-scale model; use SMCAModel") }
    guard !config.backbone.dilation else { throw ConfigError("backbone.dilation: the multi-scale SMCA-DETR needs strides 8 to 64, not DC5") }
    self.config = config
    let t = config.transformer
    let d = t.hiddenDim
    guard t.heads > 0, d % t.heads == 0 else { throw ConfigError("transformer.hidden_dim \(d) must be a multiple of transformer.heads") }
    body = config.backbone.makeResNet()
    let channels = config.backbone.stageChannels
    inputProjections = (1...3).map { Conv2d(channels[$0], d, kernelSize: 1) }
    coarsestProjection = Conv2d(channels[3], d, kernelSize: 3, stride: 2, padding: 1)
    levelEmbedding = Tensor.empty([4, d])
    encoderLayers = ModuleList(
      (0..<t.encoderLayers).map { _ in
        SMCADepthwiseEncoderLayer(dim: d, feedForwardDim: t.feedForwardDim, kernelSize: config.encoderKernelSize, dropout: t.dropout)
      })
    fineToMiddle = Conv2d(d, d, kernelSize: 3, stride: 2, padding: 1)
    decoder = SMCADecoder(config: config, segments: 4)
    queryEmbedding = Embedding(t.queries, d)
    classHead = Linear(d, config.classCount + 1)
    boxHead = MLP(inputDim: d, hiddenDim: d, outputDim: 4, layerCount: 3)
    super.init()
    let transformer = Module()
    let encoder = Module()
    encoder.registerModule("layers", encoderLayers)
    transformer.registerModule("encoder", encoder)
    transformer.registerModule("decoder", decoder)
    transformer.registerParameter("level_embed", levelEmbedding)
    // The official initialization: Xavier-uniform for the encoder's and decoder's matrices (before
    // the level embedding and `conv` exist), scales at 1, level embedding normal, class prior 0.01.
    for (_, parameter) in transformer.namedParameters() where parameter.rank > 1 { Initialization.xavierUniform(parameter) }
    decoder.resetScaleHeads()
    Initialization.normal(levelEmbedding)
    transformer.registerModule("conv", fineToMiddle)
    registerModule("transformer", transformer)
    registerModule("class_embed", classHead)
    Initialization.constant(classHead.bias!, -Foundation.log((1 - 0.01) / 0.01))
    registerModule("bbox_embed", boxHead)
    registerModule("query_embed", queryEmbedding)
    for (projection, width) in zip(inputProjections, [512, 1024, 2048]) { registerModule("input_proj_\(width)", projection) }
    registerModule("input_proj_2048_3", coarsestProjection)
    let backbone = Module()
    let backboneBody = Module()
    backboneBody.registerModule("body", body)
    backbone.registerModule("0", backboneBody)
    registerModule("backbone", backbone)
  }

  public func predictions(for batch: DetectorBatch) -> DetectorOutput {
    let d = config.transformer.hiddenDim
    let features = body(batch.images, stagesOut: [2, 3, 4])
    var maps = zip(inputProjections, features).map { $0.0($0.1) }
    maps.append(coarsestProjection(features[2]))
    var masks = maps.prefix(3).map { downsample(paddingMask: batch.paddingMask, to: ($0.size(2), $0.size(3))) }
    masks.append(downsample(paddingMask: masks[2], to: (maps[3].size(2), maps[3].size(3))))
    let sine = SinePositionEncoding(featuresPerAxis: d / 2)
    let positions = masks.enumerated().map { level, mask in sine(paddingMask: mask) + levelEmbedding[level].view(1, d, 1, 1) }
    for layer in encoderLayers { maps = layer(maps, positions: positions) }

    // Four key segments: the stride-8 map brought to stride 16, then the maps of strides 16, 32, 64.
    let segmentMaps = [fineToMiddle(maps[0]), maps[1], maps[2], maps[3]]
    let levels = [1, 1, 2, 3]
    let tokens = { (map: Tensor) in map.flattened(from: 2).permuted(2, 0, 1) }  // [h·w, batch, d]
    let segments = zip(levels, [0.5, 0.5, 1, 2]).map { level, factor in
      KeySegment(size: (maps[level].size(2), maps[level].size(3)), stride: Self.strides[level], distanceFactor: factor)
    }
    return decoder(
      memory: Tensor.cat(segmentMaps.map(tokens), dim: 0), position: Tensor.cat(levels.map { tokens(positions[$0]) }, dim: 0),
      mask: Tensor.cat(levels.map { masks[$0].flattened(from: 1) }, dim: 1), segments: segments,
      queryPosition: queryEmbedding.weight.unsqueezed(dim: 1).expanded(to: [config.transformer.queries, batch.count, d]),
      imageSizes: batch.pixelSizes, classHead: classHead, boxHead: boxHead)
  }
}
