import Detection
import Torch
import TorchNN

/// One layer of SD-DETR's decoder (reconstructed). With one query kind it is Conditional DETR's
/// layer (same keys). With two (classification, localization) the kinds meet in a shared
/// self-attention (keys flat on the layer, as Conditional DETR's) and then attend to the memory in
/// two independent Conditional cross-attention + FFN branches (`cls`, `loc`); as the paper's "two
/// decoders" comparison, each branch is instead a whole Conditional DETR layer.
final class SplitDecoderLayer: Module {
  enum Structure {
    case single(ConditionalDecoderLayer)
    case shared(ConditionalSelfAttention, SDDETRConfig.SelfAttentionConcat, branches: [ConditionalCrossAttention])
    case separate([ConditionalDecoderLayer])
  }

  let structure: Structure

  init(config: SDDETRConfig, isFirst: Bool) {
    let t = config.transformer
    let (d, heads, width, p) = (t.hiddenDim, t.decoder.heads, t.decoder.feedForwardDim, t.dropout)
    if config.twoFullDecoders {
      structure = .separate(
        (0..<2).map { _ in ConditionalDecoderLayer(dim: d, heads: heads, feedForwardDim: width, dropout: p, isFirst: isFirst) })
    } else if config.splitCrossAttention {
      let dropout = Dropout(p)
      let attentionWidth = config.selfAttentionConcat == .channel ? 2 * d : d
      let selfAttention = ConditionalSelfAttention(dim: attentionWidth, heads: heads, dropout: dropout)
      let classBranch = ConditionalCrossAttention(dim: d, heads: heads, feedForwardDim: width, dropout: dropout, isFirst: isFirst)
      let boxBranch = ConditionalCrossAttention(
        dim: d, heads: heads, feedForwardDim: width, dropout: dropout, isFirst: isFirst,
        sharedMemoryProjections: config.shareKeyValue ? classBranch.memoryProjections : nil)
      structure = .shared(selfAttention, config.selfAttentionConcat, branches: [classBranch, boxBranch])
    } else {
      structure = .single(ConditionalDecoderLayer(dim: d, heads: heads, feedForwardDim: width, dropout: p, isFirst: isFirst))
    }
    super.init()
    switch structure {
    case .single(let layer): for (name, child) in layer.children { registerModule(name, child) }
    case .shared(let selfAttention, _, let branches):
      for (name, child) in selfAttention.children { registerModule(name, child) }
      registerModule("cls", branches[0])
      registerModule("loc", branches[1])
    case .separate(let layers):
      registerModule("cls", layers[0])
      registerModule("loc", layers[1])
    }
  }

  /// The queries of each kind after this layer, `[queries, batch, d]` each.
  /// - `contents`, `positions`, `sines`: per kind (1 or 2), `[queries, batch, d]`; `sines` already scaled
  ///   by the layer's λ; `memory`, `memoryPosition [hw, batch, d]`, `memoryMask [batch, hw]`.
  func callAsFunction(contents: [Tensor], positions: [Tensor], sines: [Tensor], memory: Tensor, memoryPosition: Tensor, memoryMask: Tensor)
    -> [Tensor]
  {
    switch structure {
    case .single(let layer):
      return [
        layer(
          contents[0], memory: memory, memoryPosition: memoryPosition, memoryMask: memoryMask, queryPosition: positions[0],
          querySine: sines[0])
      ]
    case .separate(let layers):
      return (0..<2).map {
        layers[$0](
          contents[$0], memory: memory, memoryPosition: memoryPosition, memoryMask: memoryMask, queryPosition: positions[$0],
          querySine: sines[$0])
      }
    case .shared(let selfAttention, let concat, let branches):
      let dim = contents[0].size(2)
      let queries = contents[0].size(0)
      let attended: [Tensor]
      switch concat {
      case .channel:
        attended = selfAttention(Tensor.cat(contents, dim: 2), queryPosition: Tensor.cat(positions, dim: 2)).split(size: dim, dim: 2)
      case .token:
        attended = selfAttention(Tensor.cat(contents, dim: 0), queryPosition: Tensor.cat(positions, dim: 0)).split(size: queries, dim: 0)
      }
      return (0..<2).map {
        branches[$0](
          attended[$0], memory: memory, memoryPosition: memoryPosition, memoryMask: memoryMask, queryPosition: positions[$0],
          querySine: sines[$0])
      }
    }
  }
}
