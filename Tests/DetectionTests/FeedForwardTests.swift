import Testing
import Torch
import TorchNN
import TorchTestSupport

@testable import Detection

/// The post-norm blocks write into fresh intermediates in inference; results and gradients stay those of the composition.
@Suite struct FeedForwardTests {
  @Test func inferenceGivesTheComposedResultAndLeavesTheInputAlone() {
    let (linear1, linear2, norm, dropout) = withSeededGenerator(3) { (Linear(8, 32), Linear(32, 8), LayerNorm(8), Dropout(0.1)) }
    dropout.train(false)
    let x = Tensor.randn([2, 5, 8], generator: Generator(seed: 4))
    let before = x.clone()
    let composed = norm(x + linear2(linear1(x).relu()))
    let inference = withInferenceMode { feedForward(x, linear1, linear2, dropout: dropout, norm: norm) }
    #expect(inference.shape == [2, 5, 8])
    #expect((x .== before).all().item(Bool.self), "the input keeps its values")
    expectClose(inference, composed, relative: 0, absolute: 1e-6, "feed-forward in inference")
    expectClose(x, before, relative: 0, absolute: 0, "the input is not written")

  }

  /// In training (dropout on, the same seed for both), the in-place block gives the composition's
  /// output and the same gradients for the weights and the input.
  @Test func trainingGivesTheComposedOutputAndGradients() {
    let (linear1, linear2, norm, dropout) = withSeededGenerator(3) { (Linear(8, 32), Linear(32, 8), LayerNorm(8), Dropout(0.2)) }
    let input = Tensor.randn([2, 5, 8], generator: Generator(seed: 4))
    func gradients(_ block: (Tensor) -> Tensor) -> [Tensor] {
      let x = input.clone().requiringGrad()
      let output = withSeededGenerator(11) { block(x) }
      (output * Tensor.randn([2, 5, 8], generator: Generator(seed: 12))).sum().backward()
      defer { for parameter in [linear1.weight, linear2.weight, norm.weight!] { parameter.grad = nil } }
      return [output.detached(), x.grad!, linear1.weight.grad!, linear2.weight.grad!, norm.weight!.grad!]
    }
    let inPlace = gradients { feedForward($0, linear1, linear2, dropout: dropout, norm: norm) }
    let composed = gradients { norm($0 + dropout(linear2(dropout(linear1($0).relu())))) }
    #expect((inPlace[0] .== 0).logicalNot().any().item(Bool.self), "the block's output is not all zeros")
    for (index, name) in ["output", "input gradient", "linear1 gradient", "linear2 gradient", "norm gradient"].enumerated() {
      expectClose(inPlace[index], composed[index], relative: 1e-5, absolute: 1e-6, name)
    }
  }

  @Test func addAndNormalizeWritesOnlyIntoTheUpdate() {
    let norm = LayerNorm(4)
    let x = Tensor.randn([3, 4], generator: Generator(seed: 5))
    let update = Tensor.randn([3, 4], generator: Generator(seed: 6))
    let expected = norm(x + update)
    let xBefore = x.clone()
    let sum = x + update
    let result = withInferenceMode { addAndNormalize(x, freshUpdate: update, norm: norm) }
    #expect((update - sum).abs().max().item(Float.self) <= 1e-6, "in inference the sum is written into the update")
    #expect((x .== xBefore).all().item(Bool.self), "x keeps its values")
    expectClose(result, expected, relative: 0, absolute: 1e-6, "residual norm")
    expectClose(x, xBefore, relative: 0, absolute: 0, "x is not written")
  }
}
