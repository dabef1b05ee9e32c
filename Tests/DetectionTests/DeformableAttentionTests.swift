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
}
