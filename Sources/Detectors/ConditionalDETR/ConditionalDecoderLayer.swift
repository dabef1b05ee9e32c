import Detection
import Torch
import TorchNN

/// Conditional DETR's decoder layer (Meng et al., ICCV 2021): a self-attention block with separate
/// content and position projections, then a cross-attention block whose queries and keys
/// concatenate, per head, a content part and a spatial part (the scaled sine embedding of the
/// reference point), and the feed-forward network. Keys as the reference, flat on the layer
/// (`sa_qcontent_proj`, ..., `ca_qpos_sine_proj`, `self_attn.out_proj`, `cross_attn.out_proj`).
final class ConditionalDecoderLayer: Module {
  let selfAttention: ConditionalSelfAttention
  let crossAttention: ConditionalCrossAttention

  init(dim: Int, heads: Int, feedForwardDim: Int, dropout: Double, isFirst: Bool) {
    let dropout = Dropout(dropout)
    selfAttention = ConditionalSelfAttention(dim: dim, heads: heads, dropout: dropout)
    crossAttention = ConditionalCrossAttention(dim: dim, heads: heads, feedForwardDim: feedForwardDim, dropout: dropout, isFirst: isFirst)
    super.init()
    // The reference's order (parameter order is what optimizers and old checkpoints see).
    let blocks = Dictionary(uniqueKeysWithValues: selfAttention.children + crossAttention.children.filter { $0.name != "dropout" })
    for name in Self.referenceOrder { if let child = blocks[name] { registerModule(name, child) } }
  }

  static let referenceOrder = [
    "sa_qcontent_proj", "sa_qpos_proj", "sa_kcontent_proj", "sa_kpos_proj", "sa_v_proj", "self_attn", "ca_qcontent_proj", "ca_qpos_proj",
    "ca_kcontent_proj", "ca_kpos_proj", "ca_v_proj", "ca_qpos_sine_proj", "cross_attn", "linear1", "linear2", "norm1", "norm2", "norm3",
    "dropout",
  ]

  /// - `target`, `queryPosition`, `querySine`: `[queries, batch, d]`; `memory`, `memoryPosition`: `[hw, batch, d]`.
  func callAsFunction(
    _ target: Tensor, memory: Tensor, memoryPosition: Tensor, memoryMask: Tensor, queryPosition: Tensor, querySine: Tensor
  ) -> Tensor {
    crossAttention(
      selfAttention(target, queryPosition: queryPosition), memory: memory, memoryPosition: memoryPosition, memoryMask: memoryMask,
      queryPosition: queryPosition, querySine: querySine)
  }
}

/// Conditional DETR's self-attention over the queries: `q = Lqc(x) + Lqp(pos)`, `k = Lkc(x) + Lkp(pos)`,
/// `v = Lv(x)`, multi-head attention, residual and post-norm. Keys `sa_qcontent_proj`, `sa_qpos_proj`,
/// `sa_kcontent_proj`, `sa_kpos_proj`, `sa_v_proj`, `self_attn`, `norm1`.
final class ConditionalSelfAttention: Module {
  let queryContent: Linear, queryPosition: Linear, keyContent: Linear, keyPosition: Linear, value: Linear
  let attention: ProjectedAttention
  let norm: LayerNorm
  let dropout: Dropout

  /// `dim` is the width of the queries (SD-DETR's channel concatenation attends at twice the model width).
  init(dim: Int, heads: Int, dropout: Dropout) {
    (queryContent, queryPosition, keyContent, keyPosition, value) = (
      Linear(dim, dim), Linear(dim, dim), Linear(dim, dim), Linear(dim, dim), Linear(dim, dim)
    )
    attention = ProjectedAttention(valueDim: dim, heads: heads, dropout: dropout.probability)
    norm = LayerNorm(dim)
    self.dropout = dropout
    super.init()
    registerModule("sa_qcontent_proj", queryContent)
    registerModule("sa_qpos_proj", queryPosition)
    registerModule("sa_kcontent_proj", keyContent)
    registerModule("sa_kpos_proj", keyPosition)
    registerModule("sa_v_proj", value)
    registerModule("self_attn", attention)
    registerModule("norm1", norm)
    registerModule("dropout", dropout)
  }

  /// `target`, `queryPosition`: `[queries, batch, dim]` → `[queries, batch, dim]`.
  func callAsFunction(_ target: Tensor, queryPosition position: Tensor) -> Tensor {
    let q = queryContent(target) + queryPosition(position)
    let k = keyContent(target) + keyPosition(position)
    return norm(target + dropout(attention(query: q, key: k, value: value(target))))
  }
}

/// Conditional DETR's cross-attention and feed-forward network. Per head, the query is
/// `[Lqc(x); Lsine(querySine)]` and the key `[Lkc(m); Lkp(p)]` (64 wide for 32-wide values); the first
/// layer also adds `Lqp(queryPosition)` to the content query and the key position to the content key.
/// Keys `ca_qcontent_proj`, `ca_qpos_proj` (first layer), `ca_kcontent_proj`, `ca_kpos_proj`, `ca_v_proj`,
/// `ca_qpos_sine_proj`, `cross_attn`, `norm2`, `linear1`, `linear2`, `norm3`.
final class ConditionalCrossAttention: Module {
  /// The projections of the memory, which SD-DETR's two branches may share.
  struct MemoryProjections {
    let keyContent: Linear, keyPosition: Linear, value: Linear
  }

  let heads: Int
  let queryContent: Linear, queryPositionProjection: Linear?, querySine: Linear
  let memoryProjections: MemoryProjections
  let attention: ProjectedAttention
  let linear1: Linear, linear2: Linear
  let norm2: LayerNorm, norm3: LayerNorm
  let dropout: Dropout

  /// `sharedMemoryProjections`: another block's key and value projections to use (not registered here).
  init(dim: Int, heads: Int, feedForwardDim: Int, dropout: Dropout, isFirst: Bool, sharedMemoryProjections: MemoryProjections? = nil) {
    self.heads = heads
    queryContent = Linear(dim, dim)
    queryPositionProjection = isFirst ? Linear(dim, dim) : nil
    memoryProjections =
      sharedMemoryProjections ?? MemoryProjections(keyContent: Linear(dim, dim), keyPosition: Linear(dim, dim), value: Linear(dim, dim))
    querySine = Linear(dim, dim)
    attention = ProjectedAttention(valueDim: dim, heads: heads, dropout: dropout.probability)
    (linear1, linear2) = (Linear(dim, feedForwardDim), Linear(feedForwardDim, dim))
    (norm2, norm3) = (LayerNorm(dim), LayerNorm(dim))
    self.dropout = dropout
    super.init()
    registerModule("ca_qcontent_proj", queryContent)
    if let queryPositionProjection { registerModule("ca_qpos_proj", queryPositionProjection) }
    if sharedMemoryProjections == nil {
      registerModule("ca_kcontent_proj", memoryProjections.keyContent)
      registerModule("ca_kpos_proj", memoryProjections.keyPosition)
      registerModule("ca_v_proj", memoryProjections.value)
    }
    registerModule("ca_qpos_sine_proj", querySine)
    registerModule("cross_attn", attention)
    registerModule("linear1", linear1)
    registerModule("linear2", linear2)
    registerModule("norm2", norm2)
    registerModule("norm3", norm3)
    registerModule("dropout", dropout)
  }

  /// - `x`, `queryPosition`, `querySine`: `[queries, batch, d]`; `memory`, `memoryPosition`: `[hw, batch, d]`;
  ///   `memoryMask [batch, hw]` (true on padding).
  func callAsFunction(_ x: Tensor, memory: Tensor, memoryPosition: Tensor, memoryMask: Tensor, queryPosition: Tensor, querySine: Tensor)
    -> Tensor
  {
    let (queries, batch, dim) = (x.size(0), x.size(1), x.size(2))
    let hw = memory.size(0)
    let headDim = dim / heads
    var crossQuery = queryContent(x)
    var crossKey = memoryProjections.keyContent(memory)
    let keyPosition = memoryProjections.keyPosition(memoryPosition)
    if let queryPositionProjection {
      crossQuery = crossQuery + queryPositionProjection(queryPosition)
      crossKey = crossKey + keyPosition
    }
    let sine = self.querySine(querySine).view(queries, batch, heads, headDim)
    let query = Tensor.cat([crossQuery.view(queries, batch, heads, headDim), sine], dim: 3).view(queries, batch, 2 * dim)
    let key = Tensor.cat([crossKey.view(hw, batch, heads, headDim), keyPosition.view(hw, batch, heads, headDim)], dim: 3).view(
      hw, batch, 2 * dim)
    let attended = attention(query: query, key: key, value: memoryProjections.value(memory), keyPaddingMask: memoryMask)
    return feedForward(norm2(x + dropout(attended)), linear1, linear2, dropout: dropout, norm: norm3)
  }
}

/// The sine embedding of points `[queries, batch, 2]` (x, y in [0, 1]) → `[queries, batch, 2·features]`,
/// y features first, as Conditional DETR builds its spatial queries.
func sineEmbedding(ofPoints points: Tensor, featuresPerAxis: Int) -> Tensor {
  let scale = 2 * Double.pi
  let k = Tensor.arange(featuresPerAxis, device: points.device).to(.float32)
  let frequencies = Tensor.pow(10000, k.floorDivided(by: 2) * 2 / Double(featuresPerAxis))
  func encode(_ values: Tensor) -> Tensor {
    let angles = (values * scale).unsqueezed(dim: 2) / frequencies
    return Tensor.stack([angles[.ellipsis, .stride(from: 0, by: 2)].sin(), angles[.ellipsis, .stride(from: 1, by: 2)].cos()], dim: 3)
      .flattened(from: 2)
  }
  return Tensor.cat([encode(points[.ellipsis, 1]), encode(points[.ellipsis, 0])], dim: 2)
}
