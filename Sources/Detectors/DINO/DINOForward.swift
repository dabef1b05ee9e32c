import Detection
import Foundation
import Torch
import TorchNN

/// What a DINO forward pass predicts: every decoder layer's matching-query predictions, the
/// denoising queries' (training with targets only), the encoder's selected proposals, and the
/// denoising layout.
public struct DINOOutput: @unchecked Sendable {
  /// Matching queries: `logits [batch, queries, classes]`, boxes (cx, cy, w, h) normalized, per decoder layer.
  public var layers: [LayerPredictions]
  /// Denoising queries per decoder layer, `[batch, 2 · maxTargets · groups, ...]`.
  public var denoising: [LayerPredictions]
  public var denoisingGroups: DenoisingGroups?
  /// The top-k encoder proposals that became the queries' first reference boxes.
  public var encoder: LayerPredictions
}

extension DINOModel {
  /// The forward pass on `batch`. With targets and in training mode, denoising queries are added
  /// (their noise from the default generator, or `denoisingNoiseOverride`).
  public func callAsFunction(_ batch: DetectorBatch) -> DINOOutput {
    let d = config.transformer.hiddenDim
    let queryCount = config.transformer.queries
    let count = batch.count
    let features = body(batch.images, stagesOut: config.backboneStages)
    let encoding = SinePositionEncoding(
      featuresPerAxis: d / 2, temperature: config.positionTemperature, offset: config.positionOffset)
    let input = MultiScaleTokens(maps: neck(features), paddingMask: batch.paddingMask, encoding: encoding, levelEmbedding: levelEmbedding)
    let encoderReference = input.encoderReferencePoints
    var memory = input.tokens
    for layer in encoderLayers {
      memory = layer(memory, position: input.positions, referencePoints: encoderReference, levels: input.levels, paddingMask: input.attentionMask)
    }

    // Mixed query selection: positions from the best-scoring proposals, learned content.
    let (masked, proposals) = MultiScaleTokens.twoStageProposals(memory: memory, mask: input.mask, levels: input.levels)
    let proposalFeatures = encoderOutputNorm(encoderOutput(masked))
    let proposalHead = config.transformer.decoderLayers
    let proposalLogits = classHeads[proposalHead](proposalFeatures)
    let proposalBoxLogits = boxHeads[proposalHead](proposalFeatures) + proposals
    let top = proposalLogits.max(dim: -1).values.topK(queryCount, dim: 1).indices.unsqueezed(dim: -1)
    let selectedBoxLogits = proposalBoxLogits.gather(dim: 1, index: top.expanded(to: [count, queryCount, 4]))
    let selectedFeatures = proposalFeatures.gather(dim: 1, index: top.expanded(to: [count, queryCount, d]))
    let encoderPredictions = LayerPredictions(logits: classHeads[proposalHead](selectedFeatures), boxes: selectedBoxLogits.sigmoid())
    var reference = selectedBoxLogits.detached().sigmoid()
    var target = contentQueries.weight.unsqueezed(dim: 0).expanded(to: [count, queryCount, d])

    var groups: DenoisingGroups?
    var attentionMask: Tensor?
    if isTraining, !batch.targets.isEmpty, let found = denoising.groups(for: batch.targets) {
      let noised = denoisingNoiseOverride?(batch.targets, found) ?? denoising.noised(batch.targets, groups: found)
      let queries = found.queries(noised, labelEmbedding: labelEmbedding)
      target = Tensor.cat([queries.content, target], dim: 1)
      reference = Tensor.cat([queries.boxLogits.sigmoid(), reference], dim: 1)
      attentionMask = found.attentionMask(matchingQueries: queryCount)
      groups = found
    }

    // Decoder with look-forward-twice refinement: each layer refines its input boxes into the next
    // layer's (without gradient), and its predicted boxes refine the previous layer's undetached ones.
    let ratios = Tensor.cat([input.validRatios, input.validRatios], dim: -1).unsqueezed(dim: 1)
    var previousBoxes = reference
    var predictions: [LayerPredictions] = []
    for (index, layer) in decoderLayers.enumerated() {
      let referenceInput = reference.unsqueezed(dim: 2) * ratios
      let sine = boxSineEmbedding(referenceInput[.all, .all, 0], featuresPerCoordinate: d / 2, swapXY: true)
      target = layer(
        target, queryPosition: queryPositionHead(sine), referenceBoxes: referenceInput, memory: memory, levels: input.levels,
        attentionMask: attentionMask, memoryMask: input.attentionMask)
      let refined = (boxHeads[index](target) + reference.inverseSigmoid(epsilon: 1e-3)).sigmoid()
      let normalized = decoderNorm(target)
      let boxes = (boxHeads[index](normalized) + previousBoxes.inverseSigmoid(epsilon: 1e-3)).sigmoid()
      predictions.append(LayerPredictions(logits: classHeads[index](normalized), boxes: boxes))
      reference = refined.detached()
      previousBoxes = config.lookForwardTwice ? refined : reference
    }

    let split = groups?.queryCount ?? 0
    func part(_ p: LayerPredictions, _ range: Range<Int>) -> LayerPredictions {
      LayerPredictions(logits: p.logits[.all, range], boxes: p.boxes[.all, range])
    }
    let total = split + queryCount
    return DINOOutput(
      layers: predictions.map { part($0, split..<total) }, denoising: split > 0 ? predictions.map { part($0, 0..<split) } : [],
      denoisingGroups: groups, encoder: encoderPredictions)
  }

  /// The criterion of the matching queries and the encoder's proposals: focal matching cost 2 /
  /// L1 5 / GIoU 2, focal loss, proposals matched with their classes.
  public func makeCriterion() -> SetCriterion {
    var criterion = config.loss.criterion(
      classification: .focal(alpha: config.focalAlpha, gamma: 2), cost: .focal(alpha: config.focalAlpha, gamma: 2))
    criterion.classAgnosticProposals = false
    criterion.classificationTermName = "loss_class"
    return criterion
  }

  /// detrex's 15 (for 2 decoder layers; 3 per layer and 3 for the proposals in general) terms:
  /// `loss_class`, `loss_bbox`, `loss_giou` for the last layer, with `_0`... for earlier ones,
  /// `_enc` for the proposals, `_dn` and `_dn_0`... for the denoising queries (normalized by boxes ×
  /// groups; zero when the batch has no boxes).
  public func losses(for output: DINOOutput, targets: [MatchTarget]) throws -> TrainingLosses {
    let criterion = makeCriterion()
    let auxiliary = config.loss.auxiliaryLoss ? Array(output.layers.dropLast()) : []
    var terms = try criterion(output.layers.last!, auxiliary: auxiliary, encoder: output.encoder, targets: targets).terms
    let boxCount = SetCriterion.boxCount(targets)
    let denoisingLayers = config.loss.auxiliaryLoss ? output.layers.count : 1
    for index in 0..<denoisingLayers {
      let layer = output.layers.count - denoisingLayers + index
      let suffix = layer == output.layers.count - 1 ? "_dn" : "_dn_\(layer)"
      let values: LossTerms
      if let groups = output.denoisingGroups {
        values = criterion.losses(
          output.denoising[layer], targets: targets, matches: groups.matches, boxCount: boxCount * Double(groups.groupCount))
      } else {
        let zero = Tensor(scalar: Float(0))
        values = LossTerms(classification: zero, boxL1: zero, generalizedIoU: zero)
      }
      terms += criterion.weightedTerms(values, suffix: suffix)
    }
    return TrainingLosses(terms: terms)
  }
}

extension DINOModel: Detector {
  public var kind: ModelKind { .dino }
  public func encodedConfig() throws -> Data { try JSONEncoder().encode(config) }

  public func losses(for batch: DetectorBatch) throws -> TrainingLosses {
    try losses(for: self(batch), targets: batch.targets)
  }

  /// The best `detectionsPerImage` (query, class) pairs by sigmoid score, boxes clipped to the
  /// image (those left empty dropped), as detrex's inference and detectron2's post-processing.
  public func detect(_ batch: DetectorBatch) -> [ImageDetections] {
    let final = self(batch).layers.last!
    let detections = PostProcessing.sigmoidTopK(config.detectionsPerImage)(
      logits: final.logits, boxes: final.boxes, imageSizes: batch.outputSizes)
    return zip(detections, batch.outputSizes).map { $0.clipped(to: $1) }
  }

  /// detrex's DINO recipe: backbone at the backbone rate, no weight decay on normalization layers.
  public var parameterRules: [ParameterRule] {
    [ParameterRule(.normalization, weightDecay: false), ParameterRule(.namePrefix("backbone."), rate: .backbone)]
  }
}
