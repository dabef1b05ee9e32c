import Testing
import Torch
import TorchTestSupport

/// Max pooling without gradient (the shim's separable passes on the CPU) equals libtorch's
/// max_pool2d (used when a gradient is recorded), NaN and infinities included.
@Suite struct MaxPoolTests {
  @Test(arguments: [
    ((3, 3), (2, 2), (1, 1)),  // ResNet's stem
    ((2, 2), (2, 2), (0, 0)),
    ((3, 3), (1, 1), (1, 1)),
    ((3, 2), (2, 1), (1, 0)),
    ((5, 5), (3, 2), (2, 2)),
  ])
  func inferenceEqualsTheLibtorchOperator(kernel: (Int, Int), stride: (Int, Int), padding: (Int, Int)) {
    for dtype in [DType.float32, .float64] {
      let x = Tensor.randn([2, 3, 11, 10], dtype: dtype, generator: Generator(seed: 9))
      x[0, 0, 4, 4].fill(with: Double.nan)
      x[1, 2, 0, 0].fill(with: Double.infinity)
      x[1, 1, 5, .all].fill(with: -Double.infinity)
      let recorded = Functional.maxPool2d(x.requiringGrad(), kernelSize: kernel, stride: stride, padding: padding).detached()
      let inference = withNoGrad { Functional.maxPool2d(x, kernelSize: kernel, stride: stride, padding: padding) }
      #expect(inference.shape == recorded.shape)
      #expect((inference.isNaN() .== recorded.isNaN()).all().item(Bool.self), "NaN in the same places")
      #expect(inference.isNaN().any().item(Bool.self), "the NaN propagates")
      // Exact equality (infinities included) once NaN is replaced by the same finite value on both sides.
      let sentinel = 1234.5
      let same = inference.filling(where: inference.isNaN(), with: sentinel) .== recorded.filling(where: recorded.isNaN(), with: sentinel)
      #expect(same.all().item(Bool.self), "\(dtype) kernel \(kernel) stride \(stride) padding \(padding)")
    }
  }

  @Test func nonContiguousInputsGiveTheSameResult() {
    let x = Tensor.randn([1, 4, 9, 8], generator: Generator(seed: 10))
    let transposed = x.transposed(2, 3)
    let strided = withNoGrad { Functional.maxPool2d(transposed, kernelSize: (3, 3), stride: (2, 2), padding: (1, 1)) }
    let contiguous = withNoGrad { Functional.maxPool2d(transposed.contiguous(), kernelSize: (3, 3), stride: (2, 2), padding: (1, 1)) }
    expectClose(strided, contiguous, relative: 0, absolute: 0, "transposed input")
  }
}
