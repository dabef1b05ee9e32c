import Foundation
import Testing
import Torch
import TorchTestSupport

@Suite struct TensorTests {
  @Test func creationAndConversionBackToSwift() {
    let t = Tensor([1, 2, 3, 4, 5, 6] as [Float], shape: [2, 3])
    #expect(t.shape == [2, 3] && t.dtype == .float32 && t.device == .cpu && t.rank == 2 && t.elementCount == 6)
    #expect(t.strides == [3, 1])
    #expect(t.asArray(Float.self) == [1, 2, 3, 4, 5, 6])
    #expect(t.asArray(Int.self) == [1, 2, 3, 4, 5, 6])
    #expect(t[1, 2].item(Float.self) == 6)
    #expect(Tensor.zeros([2, 2], dtype: .int32).asArray(Int32.self) == [0, 0, 0, 0])
    #expect(Tensor.ones([3], dtype: .bool).asArray(Bool.self) == [true, true, true])
    #expect(Tensor.full([2], 2.5, dtype: .float64).asArray(Double.self) == [2.5, 2.5])
    #expect(Tensor.arange(5).asArray(Int.self) == [0, 1, 2, 3, 4])
    #expect(Tensor.arange(0.0, 1.0, step: 0.25, dtype: .float32).asArray(Float.self) == [0, 0.25, 0.5, 0.75])
    #expect(Tensor.linspace(0, 1, steps: 5).asArray(Float.self) == [0, 0.25, 0.5, 0.75, 1])
    #expect(Tensor.eye(2, 3).asArray(Float.self) == [1, 0, 0, 0, 1, 0])
    #expect(Tensor(scalar: 7 as Int).shape == [])
    let bytes: [UInt8] = [0, 0, 128, 63, 0, 0, 0, 64]
    let fromBytes = bytes.withUnsafeBytes { Tensor(bytes: $0, shape: [2], dtype: .float32) }
    #expect(fromBytes.asArray(Float.self) == [1, 2])
  }

  @Test func everyDtypeConverts() {
    let values = Tensor([0, 1, 2, 3] as [Float])
    for dtype in DType.allCases {
      let converted = values.to(dtype)
      #expect(converted.dtype == dtype)
      let expected: [Double] = dtype == .bool ? [0, 1, 1, 1] : [0, 1, 2, 3]
      #expect(converted.asArray(Double.self) == expected, "\(dtype)")
    }
  }

  @Test func viewsShareStorageAndCopiesDoNot() {
    let base = Tensor.zeros([2, 3])
    let view = base[0]
    view.fill(with: 5)
    #expect(base.asArray(Float.self) == [5, 5, 5, 0, 0, 0])
    let copy = base.clone()
    copy.zero()
    #expect(base.sum().item(Float.self) == 15)
    #expect(!base.transposed(0, 1).isContiguous)
    #expect(base.transposed(0, 1).contiguous().isContiguous)
  }

  @Test func inPlaceArithmetic() {
    let t = Tensor([1, 2, 3] as [Float])
    t += 1
    t *= Tensor([2, 2, 2] as [Float])
    t -= 0.5
    t /= 2
    #expect(t.asArray(Float.self) == [1.75, 2.75, 3.75])
    t.add(Tensor([1, 1, 1] as [Float]), scaledBy: -0.75)
    #expect(t.asArray(Float.self) == [1, 2, 3])
    t.clamp(max: 2)
    #expect(t.asArray(Float.self) == [1, 2, 2])
    t.fill(where: t .== 2, with: 0)
    #expect(t.asArray(Float.self) == [1, 0, 0])
  }

  @Test func deviceParsingAndCUDAAvailability() {
    #expect(Device("cpu") == .cpu)
    #expect(Device("cuda:1") == .cuda(1))
    #expect(Device("cuda") == .cuda(0))
    #expect(Device("gpu") == nil)
    #expect(Device("cuda:-1") == nil)
    #expect(Torch.isCUDAAvailable == (Torch.cudaDeviceCount > 0))
    #expect(Torch.libtorchVersion.split(separator: ".").count == 3)
  }

  @Test func descriptionShowsValues() {
    let text = Tensor([1.5, 2.5] as [Float]).description
    #expect(text.contains("1.5") && text.contains("2.5"))
  }

  @Test func generatorStateRestoresTheSequence() {
    let generator = Generator(seed: 42)
    let state = generator.state
    let first = Tensor.rand([4], generator: generator)
    generator.state = state
    #expect(Tensor.rand([4], generator: generator).asArray(Float.self) == first.asArray(Float.self))
  }

  @Test func threadCountCanBeSet() {
    withExclusiveThreadCount {
      Torch.threadCount = 1
      #expect(Torch.threadCount == 1)
    }
  }

  /// The shim's kernels (fused attention, dropout, max pool) split their loops with libtorch's
  /// parallel_for, which runs everything on the calling thread unless the shim is compiled with OpenMP.
  @Test func theShimsOwnKernelsRunOnEveryThread() {
    withExclusiveThreadCount {
      Torch.threadCount = 1
      #expect(Torch.shimParallelThreadCount == 1)
      Torch.threadCount = 2
      #expect(Torch.shimParallelThreadCount == 2)
    }
  }
}

/// The comparison helper itself must fail on a real difference, or every golden test could pass vacuously.
@Suite struct ComparisonHelperTests {
  @Test func expectCloseReportsDifferencesAndShapeMismatches() {
    withKnownIssue {
      expectClose(Tensor([1, 2, 3] as [Float]), Tensor([1, 2, 3.001] as [Float]), "a 1e-3 difference")
    }
    withKnownIssue {
      expectClose(Tensor([1, 2] as [Float]), Tensor([1, 2, 3] as [Float]), "shape")
    }
    withKnownIssue {
      expectClose(Tensor([1, 2] as [Int]), Tensor([1, 3] as [Int]), "integers")
    }
    expectClose(Tensor([1, 2, 3] as [Float]), Tensor([1, 2, 3.000001] as [Float]), "within tolerance")
  }
}
