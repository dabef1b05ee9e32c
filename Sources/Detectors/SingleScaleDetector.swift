import Detection
import Torch
import TorchNN

/// What DETR and Conditional DETR share: a ResNet's last feature map, projected to the model width,
/// encoded by post-norm transformer encoder layers with sine (or learned) positions, and a learned
/// query table (unless the family makes its queries from the image, as SD-DETR can). Registers the
/// reference keys `backbone.0.body`, `backbone.1` (learned positions), `input_proj`, `query_embed` and
/// `transformer.encoder.layers`; subclasses add the decoder under `transformer` and the heads.
public class SingleScaleDetector: Module {
  let hiddenDim: Int
  let queryCount: Int
  let body: ResNet
  let learnedPosition: LearnedPositionEncoding?
  let inputProjection: Conv2d
  let queryEmbedding: Embedding?
  let encoderLayers: ModuleList<TransformerEncoderLayer>
  /// The `transformer` container; subclasses register their decoder in it.
  let transformer = Module()

  init(backbone: BackboneConfig, transformer settings: TransformerSettings, learnedPositionEncoding: Bool, queryTable: Bool = true) {
    let hiddenDim = settings.hiddenDim
    self.hiddenDim = hiddenDim
    queryCount = settings.queries
    body = backbone.makeResNet()
    learnedPosition = learnedPositionEncoding ? LearnedPositionEncoding(featuresPerAxis: hiddenDim / 2) : nil
    inputProjection = Conv2d(backbone.stageChannels[3], hiddenDim, kernelSize: 1)
    queryEmbedding = queryTable ? Embedding(settings.queries, hiddenDim) : nil
    encoderLayers = ModuleList(
      identicalCopies(count: settings.encoderLayers) { _ in
        TransformerEncoderLayer(
          dim: hiddenDim, heads: settings.encoder.heads, feedForwardDim: settings.encoder.feedForwardDim, dropout: settings.dropout)
      })
    super.init()
    let backboneModule = Module()
    let backboneBody = Module()
    backboneBody.registerModule("body", body)
    backboneModule.registerModule("0", backboneBody)
    if let learnedPosition { backboneModule.registerModule("1", learnedPosition) }
    let encoder = Module()
    encoder.registerModule("layers", encoderLayers)
    transformer.registerModule("encoder", encoder)
    registerModule("transformer", transformer)
    if let queryEmbedding { registerModule("query_embed", queryEmbedding) }
    registerModule("input_proj", inputProjection)
    registerModule("backbone", backboneModule)
  }

  /// The encoded image: `memory [h·w, batch, d]`, its positions (same shape), its padding mask
  /// `[batch, h·w]`, and the feature map's (h, w).
  func encode(images: Tensor, paddingMask: Tensor) -> (memory: Tensor, position: Tensor, mask: Tensor, size: (height: Int, width: Int)) {
    let features = body(images, stagesOut: [4])[0]
    let (batch, height, width) = (features.size(0), features.size(2), features.size(3))
    let mask = downsample(paddingMask: paddingMask, to: (height, width))
    let position =
      learnedPosition.map { $0(batch: batch, height: height, width: width) }
      ?? SinePositionEncoding(featuresPerAxis: hiddenDim / 2)(paddingMask: mask)
    var memory = inputProjection(features).flattened(from: 2).permuted(2, 0, 1)
    let memoryPosition = position.flattened(from: 2).permuted(2, 0, 1)
    let memoryMask = mask.flattened(from: 1)
    for layer in encoderLayers { memory = layer(memory, position: memoryPosition, keyPaddingMask: memoryMask) }
    return (memory, memoryPosition, memoryMask, (height, width))
  }

  /// Registers Conditional DETR's prediction heads (`class_embed`, `bbox_embed`, shared by every
  /// decoder layer) and gives the model the reference's initialization: Xavier-uniform for every
  /// matrix under `transformer`, the heads' priors (class 0.01, box regression at zero).
  func registerConditionalHeads(classHead: Linear, boxHead: MLP) {
    registerModule("class_embed", classHead)
    registerModule("bbox_embed", boxHead)
    for (_, parameter) in transformer.namedParameters() where parameter.rank > 1 { Initialization.xavierUniform(parameter) }
    resetHeads(classHead, boxHead)
  }

  /// The query table as `[queries, batch, d]`.
  func queryPositions(batch: Int) -> Tensor {
    guard let queryEmbedding else { preconditionFailure("this model makes its queries from the image; it has no query table") }
    return queryEmbedding.weight.unsqueezed(dim: 1).expanded(to: [queryCount, batch, hiddenDim])
  }
}
