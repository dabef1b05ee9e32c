import Foundation
import Testing
import Torch
import TorchTestSupport

@testable import Detection

@Suite struct DeformableAttentionTests {
  let levels = FeatureLevels(shapes: [(4, 5), (2, 3)])

  func inputs(seed: UInt64) -> (value: Tensor, locations: Tensor, weights: Tensor) {
    let generator = Generator(seed: seed)
    let value = Tensor.randn([1, levels.tokenCount, 2, 3], dtype: .float64, generator: generator)
    // Some locations fall outside [0, 1], where the maps read zeros.
    let locations = Tensor.rand([1, 3, 2, 2, 2, 2], dtype: .float64, generator: generator) * 1.4 - 0.2
    let weights = Tensor.rand([1, 3, 2, 2, 2], dtype: .float64, generator: generator)
    return (value, locations, weights)
  }

  /// The composed core's backward (through autograd) against finite differences, for each input.
  @Test func gradientsMatchFiniteDifferences() {
    let (value, locations, weights) = inputs(seed: 1)
    expectGradientMatchesFiniteDifferences(
      of: { MultiScaleDeformableAttention.sample(value: $0, levels: levels, locations: locations, weights: weights) }, at: value)
    expectGradientMatchesFiniteDifferences(
      of: { MultiScaleDeformableAttention.sample(value: value, levels: levels, locations: locations, weights: $0) }, at: weights)
    expectGradientMatchesFiniteDifferences(
      of: { MultiScaleDeformableAttention.sample(value: value, levels: levels, locations: $0, weights: weights).square() }, at: locations,
      tolerance: 1e-4)
  }

  /// A sample at a cell centre reads that cell; far outside reads zero.
  @Test func samplingFollowsTheKernelConvention() {
    let value = Tensor(Array(0..<26).map(Double.init), shape: [1, 26, 1, 1])
    let centre = Tensor([(2 + 0.5) / 5, (1 + 0.5) / 4, 5.0, 5.0] as [Double], shape: [1, 1, 1, 2, 1, 2])
    let weights = Tensor([1.0, 1.0] as [Double], shape: [1, 1, 1, 2, 1])
    let output = MultiScaleDeformableAttention.sample(value: value, levels: levels, locations: centre, weights: weights)
    #expect(abs(output.item(Double.self) - 7) < 1e-9, "row 1, column 2 of level 0 holds 7; level 1's sample is outside")
  }

  /// A mask with no padding changes nothing, so models may pass none for unpadded batches; a real
  /// mask still changes the result.
  @Test func anAllFalseMaskEqualsNoMask() {
    let attention = withSeededGenerator(2) { MultiScaleDeformableAttention(dim: 8, heads: 2, levels: 2, points: 2) }
    let generator = Generator(seed: 7)
    let query = Tensor.randn([1, 3, 8], generator: generator)
    let input = Tensor.randn([1, levels.tokenCount, 8], generator: generator)
    let reference = Tensor.rand([1, 3, 2, 2], generator: generator)
    func attend(_ mask: Tensor?) -> Tensor {
      attention(query: query, referencePoints: reference, input: input, levels: levels, paddingMask: mask)
    }
    let unmasked = attend(nil)
    expectClose(attend(Tensor.zeros([1, levels.tokenCount], dtype: .bool)), unmasked, relative: 0, absolute: 0, "all-false mask")
    let padded = Tensor.zeros([1, levels.tokenCount], dtype: .bool)
    padded[.all, 0..<20].fill(with: true)
    #expect((attend(padded) - unmasked).abs().max().item(Float.self) > 1e-3, "masking level 0 changes the output")
  }
}

/// The fused kernel against the composed version, forward and backward, over several shapes.
@Suite struct FusedDeformableAttentionTests {
  @Test(
    arguments: [
      ([(4, 5), (2, 3)], 2, 3, 2, 2),  // levels, heads, head width, points, queries
      ([(7, 9), (4, 5), (2, 3), (1, 2)], 4, 8, 4, 5),
      ([(6, 6)], 1, 4, 3, 7),
      ([(5, 8), (3, 4), (2, 2)], 8, 2, 1, 3),
      ([(6, 7), (3, 4)], 2, 32, 3, 6),  // 32 channels per head: the vectorized path of the references
    ] as [([(Int, Int)], Int, Int, Int, Int)])
  func fusedEqualsComposedForwardAndBackward(shapes: [(Int, Int)], heads: Int, headDim: Int, points: Int, queries: Int) {
    let levels = FeatureLevels(shapes: shapes.map { (height: $0.0, width: $0.1) })
    let generator = Generator(seed: UInt64(heads * 100 + points))
    for dtype in [DType.float32, .float64] {
      let value = Tensor.randn([2, levels.tokenCount, heads, headDim], dtype: dtype, generator: generator)
      // 30% of the samples fall outside [0, 1], where maps read zeros.
      let locations = Tensor.rand([2, queries, heads, levels.count, points, 2], dtype: dtype, generator: generator) * 1.6 - 0.3
      let weights = Tensor.rand([2, queries, heads, levels.count, points], dtype: dtype, generator: generator)
      let gradient = Tensor.randn([2, queries, heads * headDim], dtype: dtype, generator: generator)
      var results: [[Tensor]] = []
      for fused in [true, false] {
        let (v, l, w) = (value.clone().requiringGrad(), locations.clone().requiringGrad(), weights.clone().requiringGrad())
        let output =
          fused
          ? MultiScaleDeformableAttention.sample(value: v, levels: levels, locations: l, weights: w)
          : MultiScaleDeformableAttention.sampleComposed(value: v, levels: levels, locations: l, weights: w)
        (output * gradient).sum().backward()
        results.append([output, v.grad!, l.grad!, w.grad!])
      }
      for (index, name) in ["output", "value gradient", "location gradient", "weight gradient"].enumerated() {
        expectClose(results[0][index], results[1][index], relative: 1e-5, absolute: 1e-5, "\(dtype) \(name)")
      }
    }
  }
}
