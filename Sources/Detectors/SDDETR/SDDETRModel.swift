import Detection
import Foundation
import Torch
import TorchNN

/// SD-DETR (Zhang et al., ICCV 2023) as swift-detr reconstructs it (docs/families/sd-detr.md):
/// Conditional DETR's backbone and encoder; a mini-detector whose top-N cells become task-aware
/// classification and localization queries; a decoder whose layers share one self-attention and
/// split the cross-attention per task; the class read from the classification branch and the box
/// from the localization branch of the same query. Keys are Conditional DETR's where the parts are
/// Conditional DETR's, plus `transformer.mini_detector`, `transformer.task_queries` and the
/// branches' `cls` / `loc` modules.
public final class SDDETRModel: SingleScaleDetector {
  public let config: SDDETRConfig
  let decoderLayers: ModuleList<SplitDecoderLayer>
  /// The final norm and the spatial-query scale λ of each query kind (one without split branches).
  let decoderNorms: [LayerNorm]
  let queryScales: [MLP]
  let referencePointHead: MLP?
  let miniDetector: MiniDetector?
  let queryMaker: TaskAwareQueryMaker?
  let classHead: Linear
  let boxHead: MLP

  public init(config: SDDETRConfig) throws {
    try config.validate()
    self.config = config
    let d = config.transformer.hiddenDim
    let kinds = config.splitCrossAttention ? 2 : 1
    decoderLayers = ModuleList((0..<config.transformer.decoderLayers).map { SplitDecoderLayer(config: config, isFirst: $0 == 0) })
    decoderNorms = (0..<kinds).map { _ in LayerNorm(d) }
    queryScales = (0..<kinds).map { _ in MLP(inputDim: d, hiddenDim: d, outputDim: d, layerCount: 2) }
    if config.taskAwareQueries {
      referencePointHead = nil
      miniDetector = MiniDetector(dim: d, classCount: config.classCount, convLayers: config.miniDetectorConvLayers)
      queryMaker = TaskAwareQueryMaker(dim: d, points: config.pointsPerBranch, branches: kinds)
    } else {
      referencePointHead = MLP(inputDim: d, hiddenDim: d, outputDim: 2, layerCount: 2)
      (miniDetector, queryMaker) = (nil, nil)
    }
    classHead = Linear(d, config.classCount)
    boxHead = MLP(inputDim: d, hiddenDim: d, outputDim: 4, layerCount: 3)
    super.init(
      backbone: config.backbone, transformer: config.transformer, learnedPositionEncoding: config.learnedPositionEncoding,
      queryTable: !config.taskAwareQueries)
    let decoder = Module()
    decoder.registerModule("layers", decoderLayers)
    let names = kinds == 1 ? [""] : ["cls_", "loc_"]
    for (name, (norm, scale)) in zip(names, zip(decoderNorms, queryScales)) {
      decoder.registerModule("\(name)norm", norm)
      decoder.registerModule("\(name)query_scale", scale)
    }
    if let referencePointHead { decoder.registerModule("ref_point_head", referencePointHead) }
    transformer.registerModule("decoder", decoder)
    if let miniDetector, let queryMaker {
      transformer.registerModule("mini_detector", miniDetector)
      transformer.registerModule("task_queries", queryMaker)
    }
    // Conditional DETR's initialization for every part, then the mini-detector's heads and the offsets' priors.
    registerConditionalHeads(classHead: classHead, boxHead: boxHead)
    if let miniDetector { resetHeads(miniDetector.classHead, miniDetector.boxHead) }
    queryMaker?.resetOffsets()
  }

  /// Predictions for `images [batch, 3, H, W]` with `paddingMask [batch, H, W]` (true on padding):
  /// each decoder layer's (class from the classification branch, box from the localization branch)
  /// and, with task-aware queries, the mini-detector's cells as the `encoder` predictions.
  public func callAsFunction(images: Tensor, paddingMask: Tensor) -> SDDETROutput {
    let (memory, memoryPosition, memoryMask, size) = encode(images: images, paddingMask: paddingMask)
    return decode(memory: memory, memoryPosition: memoryPosition, memoryMask: memoryMask, size: size)
  }

  /// The decoder part of the forward pass on the encoded image: `memory`, `memoryPosition
  /// [h·w, batch, d]`, `memoryMask [batch, h·w]` (true on padding) of an `h × w` map.
  func decode(memory: Tensor, memoryPosition: Tensor, memoryMask: Tensor, size: (height: Int, width: Int)) -> SDDETROutput {
    let batch = memory.size(1)
    let d = config.transformer.hiddenDim
    var queries: [TaskQuery]
    var cells: CellPredictions?
    var selection: Tensor?
    // The logits the box head's output is added to: [batch, queries, 4] (full boxes) or [batch, queries, 2] (centres).
    let referenceLogits: Tensor
    if let miniDetector, let queryMaker {
      let validRatios = MiniDetector.validRatios(mask: memoryMask.view(batch, size.height, size.width))
      let predicted = miniDetector(memory: memory, mask: memoryMask, size: size, validRatios: validRatios)
      let selected = Self.topCells(predicted.logits, mask: memoryMask, count: config.transformer.queries)
      let boxes = predicted.boxes.gather(dim: 1, index: selected.unsqueezed(dim: -1).expanded(to: [-1, -1, 4])).detached()
      let cellFeatures = memory.transposed(0, 1).gather(dim: 1, index: selected.unsqueezed(dim: -1).expanded(to: [-1, -1, d]))
      queries = queryMaker(
        cellFeatures: cellFeatures, boxes: boxes, classFeatures: predicted.classFeatures, boxFeatures: predicted.boxFeatures,
        validRatios: validRatios, detach: config.detachSampledContent)
      referenceLogits = config.boxReference == .box ? boxes.inverseSigmoid() : queries.last!.point.inverseSigmoid()
      (cells, selection) = (predicted, selected)
    } else {
      let position = queryPositions(batch: batch)
      let reference = referencePointHead!(position).sigmoid()
      let sine = sineEmbedding(ofPoints: reference, featuresPerAxis: d / 2)
      let query = TaskQuery(content: position.zerosLike(), position: position, sine: sine, points: nil, point: reference.transposed(0, 1))
      queries = Array(repeating: query, count: decoderNorms.count)
      referenceLogits = query.point.inverseSigmoid()
    }

    var contents = queries.map(\.content)
    var outputs: [LayerPredictions] = []
    for (index, layer) in decoderLayers.enumerated() {
      // The spatial query is scaled by a function of the previous layer's (un-normalized) output.
      let sines = zip(queries, zip(contents, queryScales)).map { query, pair in index == 0 ? query.sine : query.sine * pair.1(pair.0) }
      contents = layer(
        contents: contents, positions: queries.map(\.position), sines: sines, memory: memory, memoryPosition: memoryPosition,
        memoryMask: memoryMask)
      let normalized = zip(contents, decoderNorms).map { $1($0).transposed(0, 1) }
      let offsets = boxHead(normalized.last!)
      let boxes =
        referenceLogits.size(-1) == 4
        ? (offsets + referenceLogits).sigmoid()
        : Tensor.cat([offsets[.ellipsis, 0..<2] + referenceLogits, offsets[.ellipsis, 2..<4]], dim: -1).sigmoid()
      outputs.append(LayerPredictions(logits: classHead(normalized[0]), boxes: boxes))
    }
    return SDDETROutput(
      predictions: DetectorOutput(layers: outputs, encoder: cells.map { LayerPredictions(logits: $0.logits, boxes: $0.boxes) }),
      selectedCells: selection, queries: queries)
  }

  /// The `count` cells `[batch, count]` of highest class probability, padded cells last. A map with
  /// fewer cells than `count` gives its ranking repeated.
  static func topCells(_ logits: Tensor, mask: Tensor, count: Int) -> Tensor {
    logits.detached().max(dims: [-1]).filling(where: mask, with: -Double.infinity).topIndicesRepeatingRanking(count)
  }
}

/// SD-DETR's forward output: the predictions (the mini-detector's as `encoder`), and for parity
/// tests the selected cells `[batch, queries]` and the queries of each kind.
public struct SDDETROutput: @unchecked Sendable {
  public var predictions: DetectorOutput
  public var selectedCells: Tensor?
  var queries: [TaskQuery]
}

extension SDDETRModel: SetPredictionDetector {
  public func predictions(for batch: DetectorBatch) -> DetectorOutput {
    self(images: batch.images, paddingMask: batch.paddingMask).predictions
  }
  public var kind: ModelKind { .sdDETR }
  public var postProcessing: PostProcessing { .sigmoidTopK(100) }
  public var usesAuxiliaryLoss: Bool { config.loss.auxiliaryLoss }
  public func encodedConfig() throws -> Data { try JSONEncoder().encode(config) }

  /// Conditional DETR's matcher (focal class cost) with the focal or the alignment loss, on every
  /// decoder layer and on the mini-detector's cells (`_enc`, with the targets' classes).
  public func makeCriterion() -> SetCriterion {
    let focal = SetCriterion.Classification.focal(alpha: config.focalAlpha, gamma: 2)
    var criterion = config.loss.criterion(
      classification: config.alignment.map { .alignment($0) } ?? focal, cost: .focal(alpha: config.focalAlpha, gamma: 2))
    criterion.classAgnosticProposals = false
    return criterion
  }
}
