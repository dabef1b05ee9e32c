import Detection
import Foundation
import Torch
import TorchNN

/// What a Focus-DETR forward pass predicts: DINO's outputs and the foreground logits of every token.
public struct FocusDETROutput: @unchecked Sendable {
  public var dino: DINOOutput
  /// `[batch, tokens]`, finest level first, padding included (the foreground loss sees it).
  public var foregroundLogits: Tensor
  public var levels: FeatureLevels
  /// Per encoder layer, the tokens it kept, `[batch, k_l]` indices into the tokens, best first.
  public var selectedTokens: [Tensor]
  /// Per encoder layer, which kept tokens got the self-attention, `[batch, min(topK, k_l)]`
  /// positions among the kept ones, best first.
  public var selfAttentionTokens: [Tensor]
  /// Per encoder layer and image, how many kept tokens were written back (the image's foreground
  /// count, at most the layer's kept tokens).
  public var updatedTokens: [[Int]]
}

/// Focus-DETR as the official code (huawei-noah/noah-research, in detrex e244e6c) builds it: DINO
/// with a foreground token selector and a sparse dual-attention encoder. Keys as detrex's state dict
/// (`transformer.alpha`, `transformer.enc_mask_predictor.*`, `transformer.encoder.layers.*`, and
/// DINO's), with DINO's backbone convention; the official state dict's aliases of the proposal
/// class head (`enhance_MCSP_layerlist.*`, `transformer.encoder.enhance_MCSP.*`) are dropped on import.
public final class FocusDETRModel: Module {
  public let config: FocusDETRConfig
  let parts: DINOComponents
  let encoderLayers: ModuleList<FocusEncoderLayer>
  let selector: ForegroundTokenSelector

  /// Replaces the random draws of the denoising noise (see `DINOModel`).
  public var denoisingNoiseOverride: (@Sendable ([MatchTarget], DenoisingGroups) -> NoisedTargets)? {
    get { parts.denoisingNoiseOverride }
    set { parts.denoisingNoiseOverride = newValue }
  }

  public init(config: FocusDETRConfig) throws {
    try config.validate()
    self.config = config
    let dino = config.dino
    let settings = dino.transformer
    let encoderLayers = ModuleList(
      identicalCopies(count: settings.encoderLayers) { _ in
        FocusEncoderLayer(
          dim: settings.hiddenDim, heads: settings.encoder.heads, levels: dino.featureLevels, points: dino.encoderPoints,
          feedForwardDim: settings.encoder.feedForwardDim, dropout: settings.dropout)
      })
    self.encoderLayers = encoderLayers
    selector = ForegroundTokenSelector(dim: settings.hiddenDim, levels: dino.featureLevels)
    parts = DINOComponents(config: dino, encoderModules: Array(encoderLayers) + [selector.scorer])
    super.init()
    let transformer = Module()
    parts.register(in: self, transformer: transformer)
    transformer.registerParameter("alpha", selector.alpha)
    transformer.registerModule("enc_mask_predictor", selector.scorer)
    transformer.registerModule(atPath: "encoder.layers", encoderLayers)
    registerModule("transformer", transformer)
    parts.registerHeads(in: self)
  }

  /// The stride of each level in input pixels: 2^(stage + 1) for backbone stages, doubling for extra levels.
  var strides: [Int] {
    var strides = config.dino.backboneStages.map { 1 << ($0 + 1) }
    while strides.count < config.dino.featureLevels { strides.append(strides.last! * 2) }
    return strides
  }

  public func callAsFunction(_ batch: DetectorBatch) -> FocusDETROutput { forward(batch, lap: { _ in }, finalLayerOnly: false) }

  /// `finalLayerOnly`: the heads of the last decoder layer alone (detection needs no more).
  func forward(_ batch: DetectorBatch, lap: (String) -> Void, finalLayerOnly: Bool) -> FocusDETROutput {
    let input = parts.tokens(batch).tokens
    lap("backbone and neck")
    let (batchSize, dim) = (batch.count, config.dino.transformer.hiddenDim)
    // Foreground scores from the tokens with their positions, projected as the two-stage proposals are.
    let (masked, _) = MultiScaleTokens.twoStageProposals(memory: input.tokens + input.positions, mask: input.mask, levels: input.levels)
    let foregroundLogits = selector(parts.encoderOutputNorm(parts.encoderOutput(masked)), levels: input.levels).reshaped(batchSize, -1)
    let selection = withNoGrad {
      ForegroundSelection(logits: foregroundLogits, mask: input.mask, rho: config.foregroundRatio, cascade: config.cascade)
    }
    lap("foreground scoring")
    let reference = input.encoderReferencePoints
    let (tokens, levelCount) = (reference.size(1), input.levels.count)
    var output = input.tokens
    var updated: [[Int]] = []
    var selfAttended: [Tensor] = []
    for (layer, indices) in zip(encoderLayers, selection.indices) {
      let kept = indices.size(1)
      let rows = indices.unsqueezed(dim: -1)
      let query = output.gather(dim: 1, index: rows.expanded(to: [batchSize, kept, dim]))
      let position = input.positions.gather(dim: 1, index: rows.expanded(to: [batchSize, kept, dim]))
      let points = reference.reshaped(batchSize, tokens, levelCount * 2).gather(
        dim: 1, index: rows.expanded(to: [batchSize, kept, levelCount * 2])
      )
      .view(batchSize, kept, levelCount, 2)
      let categoryScores = withNoGrad {
        let best = parts.proposalClassHead(query).max(dim: -1).values
        let foreground = selection.scores.gather(dim: 1, index: indices)
        return config.categoryScore == .rawLogits ? best * foreground : best.sigmoid() * foreground.sigmoid()
      }
      let (result, attended) = layer(
        query, position: position, categoryScores: categoryScores, topK: config.selfAttentionTopK, referencePoints: points,
        value: input.tokens, levels: input.levels, valueMask: input.attentionMask)
      // Each image keeps the updates of its own foreground tokens only (the best ones come first);
      // its other kept rows are written back unchanged, so one scatter serves the whole batch.
      let counts = selection.foregroundCounts.map { Swift.min($0, kept) }
      let written = Tensor(counts, shape: [batchSize, 1, 1]).to(device: query.device) .> Tensor.arange(kept, device: query.device).view(1, kept, 1)
      output = output.scattering(
        dim: 1, index: rows.expanded(to: [batchSize, kept, dim]), source: Tensor.where(written, result, query))
      updated.append(counts)
      selfAttended.append(attended)
    }
    lap("encoder")
    let dino = parts.decode(memory: output, input: input, batch: batch, training: isTraining, finalLayerOnly: finalLayerOnly)
    lap("query selection and decoder")
    return FocusDETROutput(
      dino: dino, foregroundLogits: foregroundLogits, levels: input.levels, selectedTokens: selection.indices,
      selfAttentionTokens: selfAttended, updatedTokens: updated)
  }

  /// DINO's terms and `select_loss`, the foreground loss (weight 1.5).
  public func losses(for output: FocusDETROutput, batch: DetectorBatch) throws -> TrainingLosses {
    var terms = try parts.lossTerms(for: output.dino, targets: batch.targets)
    let supervision = ForegroundSupervision(strides: strides, ranges: config.foregroundRanges)
    let targets = supervision.targets(levels: output.levels, targets: batch.targets, imageSizes: batch.imageSizes)
    terms.append(
      .init(
        name: "select_loss", value: supervision.loss(logits: output.foregroundLogits, targets: targets), weight: config.foregroundLossWeight
      ))
    return TrainingLosses(terms: terms)
  }
}

extension FocusDETRModel: StagedDetector {
  public var kind: ModelKind { .focusDETR }
  public func encodedConfig() throws -> Data { try JSONEncoder().encode(config) }
  public func losses(for batch: DetectorBatch) throws -> TrainingLosses { try losses(for: self(batch), batch: batch) }
  public func detect(_ batch: DetectorBatch) -> [ImageDetections] { detect(batch, lap: { _ in }) }
  public func detect(_ batch: DetectorBatch, lap: (String) -> Void) -> [ImageDetections] {
    let detections = parts.detections(forward(batch, lap: lap, finalLayerOnly: true).dino, outputSizes: batch.outputSizes)
    lap("post-processing")
    return detections
  }
  public var parameterRules: [ParameterRule] { DINOComponents.parameterRules }
}
