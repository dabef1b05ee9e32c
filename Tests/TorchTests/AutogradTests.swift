import Testing
import Torch
import TorchTestSupport

@Suite struct AutogradTests {
  @Test func backwardAccumulatesAndClears() {
    let x = Tensor([1, 2, 3] as [Float]).requiringGrad()
    #expect(x.requiresGrad && x.isLeaf && x.grad == nil)
    (x * x).sum().backward()
    #expect(x.grad!.asArray(Float.self) == [2, 4, 6])
    (x * 3).sum().backward()
    #expect(x.grad!.asArray(Float.self) == [5, 7, 9])
    x.grad = nil
    #expect(x.grad == nil)
  }

  @Test func backwardWithAnExplicitGradient() {
    let x = Tensor([1, 2] as [Float]).requiringGrad()
    (x * 2).backward(gradient: Tensor([1, 10] as [Float]))
    #expect(x.grad!.asArray(Float.self) == [2, 20])
  }

  @Test func retainGraphAllowsASecondBackward() {
    let x = Tensor([2] as [Float]).requiringGrad()
    let y = (x * x).sum()
    y.backward(retainGraph: true)
    y.backward()
    #expect(x.grad!.asArray(Float.self) == [8])
  }

  @Test func noGradAndInferenceModeRecordNothing() {
    let x = Tensor([1, 2] as [Float]).requiringGrad()
    let y = withNoGrad { x * 2 }
    #expect(!y.requiresGrad)
    #expect(isGradEnabled)
    let z = withInferenceMode {
      #expect(isInferenceMode)
      return x * 2
    }
    #expect(!z.requiresGrad && !isInferenceMode)
    let w = withNoGrad { withGrad { x * 2 } }
    #expect(w.requiresGrad)
    #expect(!x.detached().requiresGrad)
  }

  /// The composite ops written in this package, against finite differences.
  @Test func compositeOpsMatchFiniteDifferences() {
    let probabilities = Tensor([0.2, 0.5, 0.9, 0.35, 0.61, 0.07] as [Double], shape: [2, 3])
    expectGradientMatchesFiniteDifferences(of: { $0.inverseSigmoid() }, at: probabilities)
    let x = Tensor([0.3, -1.2, 2.0, 0.7, -0.4, 1.1] as [Double], shape: [2, 3])
    let weights = Tensor([0.5, -1.0, 2.0] as [Double])
    expectGradientMatchesFiniteDifferences(of: { (($0 * weights).softmax(dim: 1) * $0).logSumExp(dims: [1]) }, at: x)
    expectGradientMatchesFiniteDifferences(of: { Tensor.where($0 .> 0, $0.square(), $0 * -0.5)[.all, 1...] }, at: x)
  }
}
