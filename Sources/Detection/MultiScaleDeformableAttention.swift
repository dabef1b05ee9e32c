import Foundation
import Torch
import TorchNN

/// The feature levels attended to: each level's (height, width) and where it starts in the flattened sequence.
public struct FeatureLevels: Sendable, Equatable {
  public var shapes: [(height: Int, width: Int)]
  public var count: Int { shapes.count }
  public var startIndices: [Int] {
    var start = 0
    return shapes.map { shape in
      defer { start += shape.height * shape.width }
      return start
    }
  }
  public var tokenCount: Int { shapes.reduce(0) { $0 + $1.height * $1.width } }

  public init(shapes: [(height: Int, width: Int)]) { self.shapes = shapes }

  public static func == (a: FeatureLevels, b: FeatureLevels) -> Bool {
    a.shapes.map(\.height) == b.shapes.map(\.height) && a.shapes.map(\.width) == b.shapes.map(\.width)
  }
}

/// Multi-scale deformable attention (Zhu et al., ICLR 2021): each query attends, per head, to a few
/// points sampled around its reference point on every level, with weights normalized jointly over
/// levels and points. Keys as the reference: `sampling_offsets`, `attention_weights`, `value_proj`, `output_proj`.
public final class MultiScaleDeformableAttention: Module {
  public let heads: Int
  public let levels: Int
  public let points: Int
  /// Whether the attention core runs the fused kernel where there is one (the default: faster, the
  /// same in float64, float32 rounding in another order) or the composed `grid_sample` version the
  /// references run (for bit-level comparisons with them over many training steps).
  public var usesFusedKernel = true
  let samplingOffsets: Linear
  let attentionWeights: Linear
  let valueProjection: Linear
  let outputProjection: Linear

  /// Initialised as the reference: zero offset weights with biases pointing each head in its own
  /// direction at distances 1...points, uniform attention, Xavier value and output projections.
  public init(dim: Int, heads: Int, levels: Int, points: Int) {
    precondition(dim % heads == 0, "MultiScaleDeformableAttention: \(dim) not divisible by \(heads) heads")
    (self.heads, self.levels, self.points) = (heads, levels, points)
    samplingOffsets = Linear(dim, heads * levels * points * 2)
    attentionWeights = Linear(dim, heads * levels * points)
    valueProjection = Linear(dim, dim)
    outputProjection = Linear(dim, dim)
    super.init()
    registerModule("sampling_offsets", samplingOffsets)
    registerModule("attention_weights", attentionWeights)
    registerModule("value_proj", valueProjection)
    registerModule("output_proj", outputProjection)
    resetParameters()
  }

  /// The reference initialisation (see `init`); detrex applies it again after its transformer-wide Xavier pass.
  public func resetParameters() {
    var bias: [Float] = []
    for head in 0..<heads {
      let theta = Float(head) * (2 * Float.pi / Float(heads))
      let (x, y) = (Foundation.cos(theta), Foundation.sin(theta))
      let largest = Swift.max(Swift.abs(x), Swift.abs(y))
      for _ in 0..<levels { for point in 0..<points { bias += [x / largest * Float(point + 1), y / largest * Float(point + 1)] } }
    }
    withNoGrad {
      samplingOffsets.weight.zero()
      samplingOffsets.bias!.copy(from: Tensor(bias))
      attentionWeights.weight.zero()
      attentionWeights.bias!.zero()
      valueProjection.bias!.zero()
      outputProjection.bias!.zero()
    }
    Initialization.xavierUniform(valueProjection.weight)
    Initialization.xavierUniform(outputProjection.weight)
  }

  /// - `query [batch, queries, dim]` (position already added),
  /// - `referencePoints [batch, queries, levels, 2]` (x, y) or `[..., 4]` (cx, cy, w, h), normalized to each level's padded map,
  /// - `input [batch, tokens, dim]` the flattened levels, `paddingMask [batch, tokens]` true on padding.
  /// Returns `[batch, queries, dim]`.
  public func callAsFunction(
    query: Tensor, referencePoints: Tensor, input: Tensor, levels featureLevels: FeatureLevels, paddingMask: Tensor?
  ) -> Tensor {
    let (batch, queryCount, dim) = (query.size(0), query.size(1), query.size(2))
    var value = valueProjection(input)
    if let paddingMask { value = value.filling(where: paddingMask.unsqueezed(dim: -1), with: 0) }
    value = value.view(batch, input.size(1), heads, dim / heads)
    let weights = attentionWeights(query).view(batch, queryCount, heads, levels * points).softmax(dim: -1)
      .view(batch, queryCount, heads, levels, points)
    let locations: Tensor
    if referencePoints.size(-1) == 2 {
      // Offsets are in pixels of their level: dividing them by the level's (width, height) is folded
      // into the projection, (W·q + b) / n = (W / n)·q + b / n, which spares a broadcast pass.
      let scale = offsetScale(featureLevels, like: samplingOffsets.weight)
      let offsets = Functional.linear(
        query, weight: samplingOffsets.weight * scale.unsqueezed(dim: 1), bias: samplingOffsets.bias.map { $0 * scale })
      // The reference repeated over points, [batch, queries, 1, levels · points · 2], so that the sum
      // broadcasts over heads only and runs on contiguous rows.
      let reference = referencePoints.unsqueezed(dim: 3).expanded(to: [batch, queryCount, levels, points, 2])
        .reshaped(batch, queryCount, 1, levels * points * 2)
      locations = (offsets.view(batch, queryCount, heads, levels * points * 2) + reference)
        .view(batch, queryCount, heads, levels, points, 2)
    } else {
      let offsets = samplingOffsets(query).view(batch, queryCount, heads, levels, points, 2)
      let centers = referencePoints[.all, .all, .newAxis, .all, .newAxis, 0..<2]
      let sizes = referencePoints[.all, .all, .newAxis, .all, .newAxis, 2..<4]
      locations = centers + offsets / Double(points) * sizes * 0.5
    }
    let sampled =
      usesFusedKernel
      ? Self.sample(value: value, levels: featureLevels, locations: locations, weights: weights)
      : Self.sampleComposed(value: value, levels: featureLevels, locations: locations, weights: weights)
    return outputProjection(sampled)
  }

  /// One over the width (x) or height (y) of each sampling offset's level, in the projection's output
  /// order (heads, levels, points, xy): `[heads · levels · points · 2]`, `like`'s dtype and device.
  /// Filled on the device: a copy from host memory would make a GPU's queue drain first.
  private func offsetScale(_ featureLevels: FeatureLevels, like tensor: Tensor) -> Tensor {
    precondition(featureLevels.count == levels, "MultiScaleDeformableAttention: \(featureLevels.count) feature levels for \(levels)")
    let perLevel = featureLevels.shapes.map { shape in
      Tensor.stack(
        [
          Tensor.full([points], 1 / Double(shape.width), dtype: tensor.dtype, device: tensor.device),
          Tensor.full([points], 1 / Double(shape.height), dtype: tensor.dtype, device: tensor.device),
        ], dim: 1)  // [points, 2]
    }
    return Tensor.stack(perLevel, dim: 0).unsqueezed(dim: 0).expanded(to: [heads, levels, points, 2]).reshaped([-1])
  }

  /// The attention core: the fused kernel where the shim has one for the device (the CPU; CUDA when built
  /// with its kernels), for float64 inputs or float32/bfloat16/float16 ones (sampled in float32), else
  /// the composed version.
  public static func sample(value: Tensor, levels: FeatureLevels, locations: Tensor, weights: Tensor) -> Tensor {
    let dtypes = [value.dtype, locations.dtype, weights.dtype]
    let fusable = dtypes.allSatisfy { $0 == .float64 } || dtypes.allSatisfy { [.float32, .bfloat16, .float16].contains($0) }
    if fusable && Functional.isFusedDeformableAttentionAvailable(on: value.device) {
      return Functional.fusedDeformableAttention(
        value: value, shapes: levels.shapes, starts: levels.startIndices, locations: locations, weights: weights)
    }
    return sampleComposed(value: value, levels: levels, locations: locations, weights: weights)
  }

  /// The attention core, composed of libtorch ops (per-level `grid_sample`, then the weighted sum):
  /// `value [batch, tokens, heads, headDim]`, `locations [batch, queries, heads, levels, points, 2]`
  /// in [0, 1], `weights [batch, queries, heads, levels, points]` → `[batch, queries, heads · headDim]`.
  /// Samples outside a map read zeros (bilinear, `align_corners` false), as the reference kernel.
  /// The reference the fused kernel is checked against.
  public static func sampleComposed(value: Tensor, levels: FeatureLevels, locations: Tensor, weights: Tensor) -> Tensor {
    let (batch, _, heads, headDim) = (value.size(0), value.size(1), value.size(2), value.size(3))
    let (queries, levelCount, points) = (locations.size(1), locations.size(3), locations.size(4))
    let perLevel = value.split(sizes: levels.shapes.map { $0.height * $0.width }, dim: 1)
    let grids = locations * 2 - 1
    var sampled: [Tensor] = []
    for (level, shape) in levels.shapes.enumerated() {
      // [batch, hw, heads, headDim] -> [batch · heads, headDim, h, w]
      let map = perLevel[level].flattened(from: 2).transposed(1, 2).reshaped(batch * heads, headDim, shape.height, shape.width)
      // [batch, queries, heads, points, 2] -> [batch · heads, queries, points, 2]
      let grid = grids[.all, .all, .all, level].transposed(1, 2).flattened(from: 0, to: 1)
      sampled.append(Functional.gridSample(map, grid: grid, mode: .bilinear, padding: .zeros, alignCorners: false))
    }
    // [batch · heads, 1, queries, levels · points]
    let attention = weights.transposed(1, 2).reshaped(batch * heads, 1, queries, levelCount * points)
    let output = (Tensor.stack(sampled, dim: -2).flattened(from: -2) * attention).sum(dim: -1).view(batch, heads * headDim, queries)
    return output.transposed(1, 2).contiguous()
  }
}
