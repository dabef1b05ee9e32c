import Detection
import Torch
import TorchNN

/// Conditional DETR's decoder layer (Meng et al., ICCV 2021): separate content and position
/// projections; cross-attention whose queries and keys concatenate, per head, a content part and a
/// spatial part (the scaled sine embedding of the reference point). Keys as the reference
/// (`sa_qcontent_proj`, ..., `ca_qpos_sine_proj`, `self_attn.out_proj`, `cross_attn.out_proj`).
final class ConditionalDecoderLayer: Module {
  let heads: Int
  let selfQueryContent: Linear, selfQueryPosition: Linear, selfKeyContent: Linear, selfKeyPosition: Linear, selfValue: Linear
  let selfAttention: ProjectedAttention
  let crossQueryContent: Linear, crossQueryPosition: Linear?, crossKeyContent: Linear, crossKeyPosition: Linear, crossValue: Linear
  let crossQuerySine: Linear
  let crossAttention: ProjectedAttention
  let linear1: Linear, linear2: Linear
  let norm1: LayerNorm, norm2: LayerNorm, norm3: LayerNorm
  let dropout: Dropout

  init(dim: Int, heads: Int, feedForwardDim: Int, dropout: Double, isFirst: Bool) {
    self.heads = heads
    (selfQueryContent, selfQueryPosition, selfKeyContent, selfKeyPosition, selfValue) = (
      Linear(dim, dim), Linear(dim, dim), Linear(dim, dim), Linear(dim, dim), Linear(dim, dim)
    )
    selfAttention = ProjectedAttention(valueDim: dim, heads: heads, dropout: dropout)
    crossQueryContent = Linear(dim, dim)
    crossQueryPosition = isFirst ? Linear(dim, dim) : nil
    (crossKeyContent, crossKeyPosition, crossValue, crossQuerySine) = (
      Linear(dim, dim), Linear(dim, dim), Linear(dim, dim), Linear(dim, dim)
    )
    crossAttention = ProjectedAttention(valueDim: dim, heads: heads, dropout: dropout)
    (linear1, linear2) = (Linear(dim, feedForwardDim), Linear(feedForwardDim, dim))
    (norm1, norm2, norm3) = (LayerNorm(dim), LayerNorm(dim), LayerNorm(dim))
    self.dropout = Dropout(dropout)
    super.init()
    registerModule("sa_qcontent_proj", selfQueryContent)
    registerModule("sa_qpos_proj", selfQueryPosition)
    registerModule("sa_kcontent_proj", selfKeyContent)
    registerModule("sa_kpos_proj", selfKeyPosition)
    registerModule("sa_v_proj", selfValue)
    registerModule("self_attn", selfAttention)
    registerModule("ca_qcontent_proj", crossQueryContent)
    if let crossQueryPosition { registerModule("ca_qpos_proj", crossQueryPosition) }
    registerModule("ca_kcontent_proj", crossKeyContent)
    registerModule("ca_kpos_proj", crossKeyPosition)
    registerModule("ca_v_proj", crossValue)
    registerModule("ca_qpos_sine_proj", crossQuerySine)
    registerModule("cross_attn", crossAttention)
    registerModule("linear1", linear1)
    registerModule("linear2", linear2)
    registerModule("norm1", norm1)
    registerModule("norm2", norm2)
    registerModule("norm3", norm3)
    registerModule("dropout", self.dropout)
  }

  /// - `target`, `queryPosition`, `querySine`: `[queries, batch, d]`; `memory`, `memoryPosition`: `[hw, batch, d]`.
  func callAsFunction(
    _ target: Tensor, memory: Tensor, memoryPosition: Tensor, memoryMask: Tensor, queryPosition: Tensor, querySine: Tensor
  ) -> Tensor {
    let q = selfQueryContent(target) + selfQueryPosition(queryPosition)
    let k = selfKeyContent(target) + selfKeyPosition(queryPosition)
    var x = norm1(target + dropout(selfAttention(query: q, key: k, value: selfValue(target))))

    let (queries, batch, dim) = (x.size(0), x.size(1), x.size(2))
    let hw = memory.size(0)
    let headDim = dim / heads
    var crossQuery = crossQueryContent(x)
    var crossKey = crossKeyContent(memory)
    let keyPosition = crossKeyPosition(memoryPosition)
    if let crossQueryPosition {
      crossQuery = crossQuery + crossQueryPosition(queryPosition)
      crossKey = crossKey + keyPosition
    }
    let sine = crossQuerySine(querySine).view(queries, batch, heads, headDim)
    let query = Tensor.cat([crossQuery.view(queries, batch, heads, headDim), sine], dim: 3).view(queries, batch, 2 * dim)
    let key = Tensor.cat([crossKey.view(hw, batch, heads, headDim), keyPosition.view(hw, batch, heads, headDim)], dim: 3).view(
      hw, batch, 2 * dim)
    x = norm2(x + dropout(crossAttention(query: query, key: key, value: crossValue(memory), keyPaddingMask: memoryMask)))
    x = feedForward(x, linear1, linear2, dropout: dropout, norm: norm3)
    return x
  }
}

/// The sine embedding of points `[queries, batch, 2]` (x, y in [0, 1]) → `[queries, batch, 2·features]`,
/// y features first, as Conditional DETR builds its spatial queries.
func sineEmbedding(ofPoints points: Tensor, featuresPerAxis: Int) -> Tensor {
  let scale = 2 * Double.pi
  let k = Tensor.arange(featuresPerAxis).to(.float32)
  let frequencies = Tensor.pow(10000, k.floorDivided(by: 2) * 2 / Double(featuresPerAxis))
  func encode(_ values: Tensor) -> Tensor {
    let angles = (values * scale).unsqueezed(dim: 2) / frequencies
    return Tensor.stack([angles[.ellipsis, .stride(from: 0, by: 2)].sin(), angles[.ellipsis, .stride(from: 1, by: 2)].cos()], dim: 3)
      .flattened(from: 2)
  }
  return Tensor.cat([encode(points[.ellipsis, 1]), encode(points[.ellipsis, 0])], dim: 2)
}
