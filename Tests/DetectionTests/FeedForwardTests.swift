import Testing
import Torch
import TorchNN
import TorchTestSupport

@testable import Detection

/// The post-norm blocks work in place only where that cannot change a result or a gradient.
@Suite struct FeedForwardTests {
  @Test func inPlaceInferenceGivesTheComposedResultAndLeavesTheInputAlone() {
    let (linear1, linear2, norm, dropout) = withSeededDefaultGenerator(3) { (Linear(8, 32), Linear(32, 8), LayerNorm(8), Dropout(0.1)) }
    dropout.train(false)
    let x = Tensor.randn([2, 5, 8], generator: Generator(seed: 4))
    let before = x.clone()
    let composed = norm(x + linear2(linear1(x).relu()))
    let inference = withInferenceMode { feedForward(x, linear1, linear2, dropout: dropout, norm: norm) }
    expectClose(inference, composed, relative: 0, absolute: 1e-6, "feed-forward in inference")
    expectClose(x, before, relative: 0, absolute: 0, "the input is not written")

    let recorded = feedForward(x, linear1, linear2, dropout: dropout, norm: norm)
    expectClose(recorded, composed, relative: 0, absolute: 1e-6, "feed-forward with gradients")
    recorded.sum().backward()
    #expect(linear1.weight.grad != nil, "gradients reach the first linear layer")
  }

  @Test func addAndNormalizeWritesOnlyIntoTheUpdate() {
    let norm = LayerNorm(4)
    let x = Tensor.randn([3, 4], generator: Generator(seed: 5))
    let update = Tensor.randn([3, 4], generator: Generator(seed: 6))
    let expected = norm(x + update)
    let xBefore = x.clone()
    let result = withInferenceMode { addAndNormalize(x, freshUpdate: update, norm: norm) }
    expectClose(result, expected, relative: 0, absolute: 1e-6, "residual norm")
    expectClose(x, xBefore, relative: 0, absolute: 0, "x is not written")
  }
}
