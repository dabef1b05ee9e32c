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
public final class SMCAMultiScaleModel: SMCAMultiScaleBase, SMCADetector {
  let inputProjections: [Conv2d]
  let coarsestProjection: Conv2d
  let encoderLayers: ModuleList<SMCADepthwiseEncoderLayer>
  let fineToMiddle: Conv2d
  /// The strides of the four maps, finest first.
  static let strides = [8, 16, 32, 64]

  public init(config: SMCAConfig) throws {
    guard config.encoder == .depthwiseMultiScale else { throw ConfigError("SMCAMultiScaleModel is the released multi-scale model") }
    let t = config.transformer
    let d = t.hiddenDim
    let channels = config.backbone.stageChannels
    inputProjections = (1...3).map { Conv2d(channels[$0], d, kernelSize: 1) }
    coarsestProjection = Conv2d(channels[3], d, kernelSize: 3, stride: 2, padding: 1)
    encoderLayers = ModuleList(
      (0..<t.encoderLayers).map { _ in
        SMCADepthwiseEncoderLayer(dim: d, feedForwardDim: t.encoder.feedForwardDim, kernelSize: config.encoderKernelSize, dropout: t.dropout)
      })
    fineToMiddle = Conv2d(d, d, kernelSize: 3, stride: 2, padding: 1)
    try super.init(config: config, levels: 4, segments: 4)
    let encoder = Module()
    encoder.registerModule("layers", encoderLayers)
    transformer.registerModule("encoder", encoder)
    transformer.registerModule("conv", fineToMiddle)
    resetParameters(except: ["conv.weight"])
    for (projection, width) in zip(inputProjections, [512, 1024, 2048]) { registerModule("input_proj_\(width)", projection) }
    registerModule("input_proj_2048_3", coarsestProjection)
  }

  public func predictions(for batch: DetectorBatch) -> DetectorOutput {
    let features = body(batch.images, stagesOut: [2, 3, 4])
    var maps = zip(inputProjections, features).map { $0.0($0.1) }
    maps.append(coarsestProjection(features[2]))
    let (masks, positions) = masksAndPositions(of: maps, paddingMask: batch.paddingMask)
    for layer in encoderLayers { maps = layer(maps, positions: positions) }
    // Four key segments: the stride-8 map brought to stride 16, then the maps of strides 16, 32, 64.
    let segmentMaps = [fineToMiddle(maps[0]), maps[1], maps[2], maps[3]]
    let segments = zip(zip(segmentMaps, [1, 1, 2, 3]), [0.5, 0.5, 1, 2]).map { pair, factor in
      let (map, level) = pair
      return (
        map, positions[level], masks[level],
        KeySegment(size: (maps[level].size(2), maps[level].size(3)), stride: Self.strides[level], distanceFactor: factor)
      )
    }
    return decode(segments: segments, batch: batch)
  }
}
