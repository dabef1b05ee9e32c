import Detection
import Foundation
import Torch
import TorchNN

extension DeformableDETRModel {
  /// Predictions for `images [batch, 3, H, W]` with `paddingMask [batch, H, W]` (true on padding).
  public func callAsFunction(images: Tensor, paddingMask: Tensor) -> DetectorOutput {
    let (memory, levels, memoryMask, attentionMask, validRatios) = encode(images: images, paddingMask: paddingMask)
    let batch = images.size(0)
    let d = config.transformer.hiddenDim

    var queryPosition: Tensor
    var target: Tensor
    var reference: Tensor
    var encoderPredictions: LayerPredictions?
    if config.twoStage {
      let (features, proposals) = proposalFeatures(memory: memory, mask: memoryMask, levels: levels)
      let proposalHead = config.transformer.decoderLayers
      let classLogits = classHeads[proposalHead](features)
      let boxLogits = boxHeads[proposalHead](features) + proposals
      encoderPredictions = LayerPredictions(logits: classLogits, boxes: boxLogits.sigmoid())
      // An image with fewer tokens than queries repeats its ranking (the official code would fail).
      let top = classLogits[.ellipsis, 0].topIndicesRepeatingRanking(config.transformer.queries)
      let selected = boxLogits.gather(dim: 1, index: top.unsqueezed(dim: -1).expanded(to: [batch, config.transformer.queries, 4]))
        .detached()
      reference = selected.sigmoid()
      let embedded = proposalProjectionNorm!(proposalProjection!(proposalEmbedding(selected)))
      let parts = embedded.split(size: d, dim: 2)
      (queryPosition, target) = (parts[0], parts[1])
    } else {
      let parts = queryEmbedding!.weight.split(size: d, dim: 1)
      queryPosition = parts[0].unsqueezed(dim: 0).expanded(to: [batch, config.transformer.queries, d])
      target = parts[1].unsqueezed(dim: 0).expanded(to: [batch, config.transformer.queries, d])
      reference = referencePointHead!(queryPosition).sigmoid()
    }

    var outputs: [LayerPredictions] = []
    for (index, layer) in decoderLayers.enumerated() {
      let ratios = reference.size(-1) == 4 ? Tensor.cat([validRatios, validRatios], dim: -1) : validRatios
      let referenceInput = reference.unsqueezed(dim: 2) * ratios.unsqueezed(dim: 1)
      target = layer(
        target, queryPosition: queryPosition, referencePoints: referenceInput, memory: memory, levels: levels, memoryMask: attentionMask)
      // Boxes are predicted relative to this layer's input reference.
      let offsets = boxHeads[index](target)
      let referenceLogits = reference.inverseSigmoid()
      let boxes: Tensor =
        reference.size(-1) == 4
        ? (offsets + referenceLogits).sigmoid()
        : Tensor.cat([offsets[.ellipsis, 0..<2] + referenceLogits, offsets[.ellipsis, 2..<4]], dim: -1).sigmoid()
      outputs.append(LayerPredictions(logits: classHeads[index](target), boxes: boxes))
      // Refinement: the next layer starts from this layer's boxes, without gradient through them.
      if config.boxRefinement { reference = boxes.detached() }
    }
    return DetectorOutput(layers: outputs, encoder: encoderPredictions)
  }

  /// The encoded multi-scale features: `memory [batch, tokens, d]`, the levels, the padding mask
  /// `[batch, tokens]`, the same mask for the attention (nil when nothing is padded) and the valid
  /// ratios `[batch, levels, 2]` as (width, height).
  func encode(images: Tensor, paddingMask: Tensor) -> (
    memory: Tensor, levels: FeatureLevels, mask: Tensor, attentionMask: Tensor?, validRatios: Tensor
  ) {
    let features = body(images, stagesOut: config.backboneStages)
    var sources: [Tensor] = []
    for (level, feature) in features.enumerated() { sources.append(inputProjections[level](feature)) }
    for level in features.count..<config.featureLevels {
      // The first extra level reads the raw last backbone map; later ones the previous extra level.
      sources.append(inputProjections[level](level == features.count ? features.last! : sources.last!))
    }
    let encoding = SinePositionEncoding(featuresPerAxis: config.transformer.hiddenDim / 2, offset: -0.5)
    let input = MultiScaleTokens(maps: sources, paddingMask: paddingMask, encoding: encoding, levelEmbedding: levelEmbedding)
    let reference = input.encoderReferencePoints
    var memory = input.tokens
    for layer in encoderLayers {
      memory = layer(memory, position: input.positions, referencePoints: reference, levels: input.levels, paddingMask: input.attentionMask)
    }
    return (memory, input.levels, input.mask, input.attentionMask, input.validRatios)
  }

  /// Two-stage proposals as logits and the memory features that score them.
  func proposalFeatures(memory: Tensor, mask: Tensor, levels: FeatureLevels) -> (features: Tensor, proposals: Tensor) {
    let (masked, proposals) = MultiScaleTokens.twoStageProposals(memory: memory, mask: mask, levels: levels)
    return (encoderOutputNorm!(encoderOutput!(masked)), proposals)
  }

  /// The sine embedding of proposal boxes given as logits `[batch, queries, 4]` → `[batch, queries, 4 · d/2]`,
  /// coordinates in (cx, cy, w, h) order.
  func proposalEmbedding(_ logits: Tensor) -> Tensor {
    boxSineEmbedding(logits.sigmoid(), featuresPerCoordinate: config.transformer.hiddenDim / 2, swapXY: false)
  }
}
