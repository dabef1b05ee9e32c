import Detection
import Foundation
import Torch
import TorchNN

/// What DINO and Focus-DETR share (detrex's DINO around its encoder): the backbone and neck that make
/// the multi-scale tokens, and everything after the encoder: mixed query selection, contrastive
/// denoising, the look-forward-twice decoder and the heads, with the criterion and post-processing.
/// The modules are registered by the model that owns them, under detrex's keys.
final class DINOComponents: @unchecked Sendable {
  let config: DINOConfig
  let body: ResNet
  let neck: ChannelMapper
  let levelEmbedding: Tensor
  let decoderLayers: ModuleList<DetrexDeformableDecoderLayer>
  /// The query position MLP over the sine embedding of each query's reference box (`ref_point_head`).
  let queryPositionHead: MLP
  let decoderNorm: LayerNorm
  /// The learned content of the matching queries (`tgt_embed`).
  let contentQueries: Embedding
  let encoderOutput: Linear
  let encoderOutputNorm: LayerNorm
  /// One head per decoder layer, and the last for the encoder's proposals.
  let classHeads: ModuleList<Linear>
  let boxHeads: ModuleList<MLP>
  /// The label embedding of the denoising queries (`label_enc`).
  let labelEmbedding: Embedding
  var denoisingNoiseOverride: (@Sendable ([MatchTarget], DenoisingGroups) -> NoisedTargets)?

  /// `transformerModules`: the owner's encoder modules, which get detrex's transformer-wide Xavier
  /// initialisation with the decoder's (after which each deformable attention gets its own scheme again).
  init(config: DINOConfig, encoderModules: [Module]) {
    self.config = config
    let d = config.transformer.hiddenDim
    let settings = config.transformer
    body = config.backbone.makeResNet()
    neck = ChannelMapper(
      inputChannels: config.backboneStages.map { config.backbone.stageChannels[$0 - 1] }, outputChannels: d, levels: config.featureLevels)
    decoderLayers = ModuleList(
      identicalCopies(count: settings.decoderLayers) { _ in
        DetrexDeformableDecoderLayer(
          dim: d, heads: settings.decoder.heads, levels: config.featureLevels, points: config.decoderPoints,
          feedForwardDim: settings.decoder.feedForwardDim,
          dropout: settings.dropout)
      })
    queryPositionHead = MLP(inputDim: 2 * d, hiddenDim: d, outputDim: d, layerCount: 2)
    decoderNorm = LayerNorm(d)
    contentQueries = Embedding(settings.queries, d)
    encoderOutput = Linear(d, d)
    encoderOutputNorm = LayerNorm(d)
    levelEmbedding = Tensor.empty([config.featureLevels, d])
    let transformerModules: [Module] = encoderModules + Array(decoderLayers) + [queryPositionHead, contentQueries, encoderOutput]
    for module in transformerModules {
      for (_, parameter) in module.namedParameters() where parameter.rank > 1 { Initialization.xavierUniform(parameter) }
    }
    for module in transformerModules {
      for case let (_, attention as MultiScaleDeformableAttention) in module.namedModules() { attention.resetParameters() }
    }
    Initialization.normal(levelEmbedding)
    // Heads: class bias for a prior probability of 0.01, box regressions starting at zero; detrex
    // deep-copies one of each into every decoder layer and the proposals, so all start equal.
    classHeads = ModuleList(
      identicalCopies(count: settings.decoderLayers + 1) { _ in
        let head = Linear(d, config.classCount)
        Initialization.constant(head.bias!, -Foundation.log((1 - 0.01) / 0.01))
        return head
      })
    boxHeads = ModuleList(
      identicalCopies(count: settings.decoderLayers + 1) { _ in
        let head = MLP(inputDim: d, hiddenDim: d, outputDim: 4, layerCount: 3)
        Initialization.constant(head.layers.last!.weight, 0)
        Initialization.constant(head.layers.last!.bias!, 0)
        return head
      })
    labelEmbedding = Embedding(config.classCount, d)
  }

  /// Registers the shared modules under detrex's keys: `backbone`, `neck`, `transformer.*`
  /// (`level_embeds`, `decoder.*`, `tgt_embed`, `enc_output`, `enc_output_norm`), `class_embed`,
  /// `bbox_embed`, `label_enc`. `transformer` is the owner's transformer module.
  func register(in model: Module, transformer: Module) {
    model.registerModule("backbone", body)
    model.registerModule("neck", neck)
    transformer.registerParameter("level_embeds", levelEmbedding)
    transformer.registerModule(atPath: "decoder.layers", decoderLayers)
    transformer.registerModule(atPath: "decoder.ref_point_head", queryPositionHead)
    transformer.registerModule(atPath: "decoder.norm", decoderNorm)
    transformer.registerModule("tgt_embed", contentQueries)
    transformer.registerModule("enc_output", encoderOutput)
    transformer.registerModule("enc_output_norm", encoderOutputNorm)
  }

  /// Registers the heads and the label embedding, after the transformer as detrex lists them.
  func registerHeads(in model: Module) {
    model.registerModule("class_embed", classHeads)
    model.registerModule("bbox_embed", boxHeads)
    model.registerModule("label_enc", labelEmbedding)
  }

  var denoising: ContrastiveDenoising {
    ContrastiveDenoising(
      queryCount: config.denoisingQueries, labelNoiseRatio: config.labelNoiseRatio, boxNoiseScale: config.boxNoiseScale,
      classCount: config.classCount)
  }

  /// The proposals' class head, which Focus-DETR also uses to score tokens inside its encoder.
  var proposalClassHead: Linear { classHeads[config.transformer.decoderLayers] }

  /// The backbone's maps through the neck, flattened into tokens with their position encodings.
  /// Also returns the neck's maps (Focus-DETR's foreground targets need their sizes).
  func tokens(_ batch: DetectorBatch) -> (tokens: MultiScaleTokens, maps: [Tensor]) {
    let maps = neck(body(batch.images, stagesOut: config.backboneStages))
    let encoding = SinePositionEncoding(
      featuresPerAxis: config.transformer.hiddenDim / 2, temperature: config.positionTemperature, offset: config.positionOffset)
    return (MultiScaleTokens(maps: maps, paddingMask: batch.paddingMask, encoding: encoding, levelEmbedding: levelEmbedding), maps)
  }

  /// Everything after the encoder: query selection from `memory [batch, tokens, d]`, denoising
  /// queries (`training` with targets), the decoder and the heads.
  ///
  /// `finalLayerOnly` (detection) computes the heads of the last decoder layer alone; `layers` then
  /// holds that layer's predictions only.
  func decode(memory: Tensor, input: MultiScaleTokens, batch: DetectorBatch, training: Bool, finalLayerOnly: Bool = false) -> DINOOutput {
    let d = config.transformer.hiddenDim
    // Images with fewer tokens than queries (below about 240x240 for 900 queries) use the first
    // content queries only; the reference fails on them.
    let queryCount = Swift.min(config.transformer.queries, memory.size(1))
    let count = batch.count

    // Mixed query selection: positions from the best-scoring proposals, learned content.
    let (masked, proposals) = MultiScaleTokens.twoStageProposals(memory: memory, mask: input.mask, levels: input.levels)
    let proposalFeatures = encoderOutputNorm(encoderOutput(masked))
    let proposalHead = config.transformer.decoderLayers
    let proposalLogits = classHeads[proposalHead](proposalFeatures)
    // An image with fewer tokens than queries repeats its ranking (the official code would fail).
    let top = proposalLogits.max(dim: -1).values.topIndicesRepeatingRanking(queryCount).unsqueezed(dim: -1)
    let selectedFeatures = proposalFeatures.gather(dim: 1, index: top.expanded(to: [count, queryCount, d]))
    // The box head works row by row: on the selected rows only, the same values for a fraction of the work.
    let selectedBoxLogits =
      boxHeads[proposalHead](selectedFeatures) + proposals.gather(dim: 1, index: top.expanded(to: [count, queryCount, 4]))
    let encoderPredictions = LayerPredictions(logits: classHeads[proposalHead](selectedFeatures), boxes: selectedBoxLogits.sigmoid())
    var reference = selectedBoxLogits.detached().sigmoid()
    var target = contentQueries.weight[0..<queryCount].unsqueezed(dim: 0).expanded(to: [count, queryCount, d])

    var groups: DenoisingGroups?
    var attentionMask: Tensor?
    if training, !batch.targets.isEmpty, let found = denoising.groups(for: batch.targets) {
      let noised = denoisingNoiseOverride?(batch.targets, found) ?? denoising.noised(batch.targets, groups: found)
      let queries = found.queries(noised, labelEmbedding: labelEmbedding)
      target = Tensor.cat([queries.content, target], dim: 1)
      reference = Tensor.cat([queries.boxLogits.sigmoid(), reference], dim: 1)
      attentionMask = found.attentionMask(matchingQueries: queryCount, device: target.device)
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
      let last = index == decoderLayers.count - 1
      let refined = last ? reference : (boxHeads[index](target) + reference.inverseSigmoid(epsilon: 1e-3)).sigmoid()
      if last || !finalLayerOnly {
        let normalized = decoderNorm(target)
        let boxes = (boxHeads[index](normalized) + previousBoxes.inverseSigmoid(epsilon: 1e-3)).sigmoid()
        predictions.append(LayerPredictions(logits: classHeads[index](normalized), boxes: boxes))
      }
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
  func makeCriterion() -> SetCriterion {
    var criterion = config.loss.criterion(
      classification: .focal(alpha: config.focalAlpha, gamma: 2), cost: .focal(alpha: config.focalAlpha, gamma: 2))
    criterion.classAgnosticProposals = false
    criterion.classificationTermName = "loss_class"
    return criterion
  }

  /// detrex's terms: `loss_class`, `loss_bbox`, `loss_giou` for the last layer, with `_0`... for
  /// earlier ones, `_enc` for the proposals, `_dn` and `_dn_0`... for the denoising queries
  /// (normalized by boxes × groups; zero when the batch has no boxes).
  func lossTerms(for output: DINOOutput, targets: [MatchTarget]) throws -> [TrainingLosses.Term] {
    let criterion = makeCriterion()
    let auxiliary = config.loss.auxiliaryLoss ? Array(output.layers.dropLast()) : []
    let matched = try criterion(output.layers.last!, auxiliary: auxiliary, encoder: output.encoder, targets: targets)
    var terms = matched.terms
    let boxCount = matched.boxCount
    let denoisingLayers = config.loss.auxiliaryLoss ? output.layers.count : 1
    for index in 0..<denoisingLayers {
      let layer = output.layers.count - denoisingLayers + index
      let suffix = layer == output.layers.count - 1 ? "_dn" : "_dn_\(layer)"
      let values: LossTerms
      if let groups = output.denoisingGroups {
        values = criterion.losses(
          output.denoising[layer], targets: targets, matches: groups.matches, boxCount: boxCount * Double(groups.groupCount))
      } else {
        let zero = Tensor.zeros([], device: output.layers.last!.logits.device)
        values = LossTerms(classification: zero, boxL1: zero, generalizedIoU: zero)
      }
      terms += criterion.weightedTerms(values, suffix: suffix)
    }
    return terms
  }

  /// The best `detectionsPerImage` (query, class) pairs by sigmoid score, boxes clipped to the
  /// image (those left empty dropped), as detrex's inference and detectron2's post-processing.
  func detections(_ output: DINOOutput, outputSizes: [(height: Int, width: Int)]) -> [ImageDetections] {
    let final = output.layers.last!
    let detections = PostProcessing.sigmoidTopK(config.detectionsPerImage)(
      logits: final.logits, boxes: final.boxes, imageSizes: outputSizes)
    return zip(detections, outputSizes).map { $0.clipped(to: $1) }
  }

  /// detrex's recipe: backbone at the backbone rate, no weight decay on normalization layers.
  static let parameterRules = [ParameterRule(.normalization, weightDecay: false), ParameterRule(.namePrefix("backbone."), rate: .backbone)]
}
