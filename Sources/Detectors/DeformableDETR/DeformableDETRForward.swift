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
      let top = classLogits[.ellipsis, 0].topK(config.transformer.queries, dim: 1).indices
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
    var flattened: [Tensor] = []
    var positions: [Tensor] = []
    var masks: [Tensor] = []
    var ratios: [Tensor] = []
    var shapes: [(height: Int, width: Int)] = []
    for (level, source) in sources.enumerated() {
      let (height, width) = (source.size(2), source.size(3))
      let mask = downsample(paddingMask: paddingMask, to: (height, width))
      shapes.append((height, width))
      flattened.append(source.flattened(from: 2).transposed(1, 2))
      positions.append(encoding(paddingMask: mask).flattened(from: 2).transposed(1, 2) + levelEmbedding[level].view(1, 1, -1))
      masks.append(mask.flattened(from: 1))
      let valid = mask.logicalNot()
      let validHeight = valid[.all, .all, 0].to(.float32).sum(dim: 1) / Double(height)
      let validWidth = valid[.all, 0, .all].to(.float32).sum(dim: 1) / Double(width)
      ratios.append(Tensor.stack([validWidth, validHeight], dim: -1))
    }
    let levels = FeatureLevels(shapes: shapes)
    var memory = Tensor.cat(flattened, dim: 1)
    let position = Tensor.cat(positions, dim: 1)
    let mask = Tensor.cat(masks, dim: 1)
    let validRatios = Tensor.stack(ratios, dim: 1)
    let reference = encoderReferencePoints(levels: levels, validRatios: validRatios)
    let attentionMask = Self.maskIfAnyPadding(mask)
    for layer in encoderLayers {
      memory = layer(memory, position: position, referencePoints: reference, levels: levels, paddingMask: attentionMask)
    }
    return (memory, levels, mask, attentionMask, validRatios)
  }

  /// The padding mask for the deformable attention, or nil when nothing is padded (every batch of one
  /// image, and batches of equal sizes), which spares the attention its masking pass over the values.
  static func maskIfAnyPadding(_ mask: Tensor) -> Tensor? {
    mask.any().item(Bool.self) ? mask : nil
  }

  /// Cell centres of every level, normalized by the valid size of their own level and then scaled
  /// to each level's valid ratio: `[batch, tokens, levels, 2]`.
  func encoderReferencePoints(levels: FeatureLevels, validRatios: Tensor) -> Tensor {
    var perLevel: [Tensor] = []
    for (level, shape) in levels.shapes.enumerated() {
      let ys = Tensor.linspace(0.5, Double(shape.height) - 0.5, steps: shape.height).view(shape.height, 1).expanded(to: [
        shape.height, shape.width,
      ])
      let xs = Tensor.linspace(0.5, Double(shape.width) - 0.5, steps: shape.width).view(1, shape.width).expanded(to: [
        shape.height, shape.width,
      ])
      let y = ys.reshaped(1, -1) / (validRatios[.all, level, 1].unsqueezed(dim: 1) * Double(shape.height))
      let x = xs.reshaped(1, -1) / (validRatios[.all, level, 0].unsqueezed(dim: 1) * Double(shape.width))
      perLevel.append(Tensor.stack([x, y], dim: -1))
    }
    return Tensor.cat(perLevel, dim: 1).unsqueezed(dim: 2) * validRatios.unsqueezed(dim: 1)
  }

  /// Two-stage proposals: one box per memory cell (centre of the cell, size 0.05·2^level) in logit
  /// space (+∞ where padded or too close to the border), and the memory features that score them.
  func proposalFeatures(memory: Tensor, mask: Tensor, levels: FeatureLevels) -> (features: Tensor, proposals: Tensor) {
    let batch = memory.size(0)
    var proposals: [Tensor] = []
    for (level, (shape, start)) in zip(levels.shapes, levels.startIndices).enumerated() {
      let levelMask = mask[.all, start..<(start + shape.height * shape.width)].view(batch, shape.height, shape.width)
      let validHeight = levelMask[.all, .all, 0].logicalNot().to(.float32).sum(dim: 1)
      let validWidth = levelMask[.all, 0, .all].logicalNot().to(.float32).sum(dim: 1)
      let ys = Tensor.linspace(0, Double(shape.height - 1), steps: shape.height).view(shape.height, 1).expanded(to: [
        shape.height, shape.width,
      ])
      let xs = Tensor.linspace(0, Double(shape.width - 1), steps: shape.width).view(1, shape.width).expanded(to: [
        shape.height, shape.width,
      ])
      let grid = Tensor.stack([xs, ys], dim: -1).unsqueezed(dim: 0)
      let scale = Tensor.stack([validWidth, validHeight], dim: -1).view(batch, 1, 1, 2)
      let centres = (grid + 0.5) / scale
      let sizes = centres.onesLike() * (0.05 * Foundation.pow(2.0, Double(level)))
      proposals.append(Tensor.cat([centres, sizes], dim: -1).view(batch, -1, 4))
    }
    var proposal = Tensor.cat(proposals, dim: 1)
    let valid = ((proposal .> 0.01) .& (proposal .< 0.99)).all(dims: [-1], keepDims: true)
    proposal = (proposal / (1 - proposal)).log()
    proposal = proposal.filling(where: mask.unsqueezed(dim: -1), with: Double.infinity)
    proposal = proposal.filling(where: valid.logicalNot(), with: Double.infinity)
    var features = memory.filling(where: mask.unsqueezed(dim: -1), with: 0)
    features = features.filling(where: valid.logicalNot(), with: 0)
    return (encoderOutputNorm!(encoderOutput!(features)), proposal)
  }

  /// The sine embedding of proposal boxes given as logits `[batch, queries, 4]` → `[batch, queries, 4 · d/2]`,
  /// coordinates in (cx, cy, w, h) order.
  func proposalEmbedding(_ logits: Tensor) -> Tensor {
    let features = config.transformer.hiddenDim / 2
    let k = Tensor.arange(features).to(.float32)
    let frequencies = Tensor.pow(10000, k.floorDivided(by: 2) * 2 / Double(features))
    let angles = (logits.sigmoid() * (2 * Double.pi)).unsqueezed(dim: -1) / frequencies
    return Tensor.stack([angles[.ellipsis, .stride(from: 0, by: 2)].sin(), angles[.ellipsis, .stride(from: 1, by: 2)].cos()], dim: 4)
      .flattened(from: 2)
  }
}
