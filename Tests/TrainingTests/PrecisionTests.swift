import Detection
import Detectors
import Foundation
import Testing
import Torch
import TorchTestSupport
import Training

/// bfloat16 autocast: the matrix products run in bfloat16, the rest (losses, matching, the fused
/// deformable attention, post-processing) in float32, and the outputs stay close to float32's.
@Suite struct PrecisionTests {
  @Test func autocastIsPerThreadNestsAndRestores() {
    let linear = Tensor.randn([4, 8])
    let weight = Tensor.randn([3, 8])
    #expect(!isAutocastEnabled())
    let (inner, outer) = withAutocast {
      let inner = withAutocast { Functional.linear(linear, weight: weight, bias: nil).dtype }
      return (inner, isAutocastEnabled())
    }
    #expect(inner == .bfloat16 && outer, "inside: bfloat16 products, still on after the nested call returns")
    #expect(!isAutocastEnabled() && Functional.linear(linear, weight: weight, bias: nil).dtype == .float32)
  }

  @Test func theFusedDeformableAttentionTakesReducedPrecisionInputsAndWorksInFloat32() {
    let (batch, queries, heads, dim) = (1, 5, 2, 4)
    let shapes = [(height: 4, width: 4), (height: 2, width: 2)]
    let value = Tensor.randn([batch, 20, heads, dim]).requiringGrad()
    let locations = Tensor.rand([batch, queries, heads, 2, 3, 2])
    let weights = Tensor.rand([batch, queries, heads, 2, 3]).softmax(dim: -1)
    let full = Functional.fusedDeformableAttention(value: value, shapes: shapes, starts: [0, 16], locations: locations, weights: weights)
    let reduced = Functional.fusedDeformableAttention(
      value: value.to(.bfloat16), shapes: shapes, starts: [0, 16], locations: locations.to(.bfloat16), weights: weights.to(.bfloat16))
    #expect(reduced.dtype == .float32)
    #expect(reduced.isClose(to: full, relativeTolerance: 2e-2, absoluteTolerance: 2e-2))
    reduced.sum().backward()
    #expect(value.grad?.dtype == .float32 && value.grad!.isFinite().all().item(Bool.self))
  }

  /// A training step's losses and gradients, and the detections, in bf16 against fp32 on the same weights.
  @Test(arguments: [ModelKind.detr, .deformableDETR, .retinaNet])
  func bf16StaysCloseToFp32(kind: ModelKind) throws {
    let detector = try withSeededGenerator(3) { try DetectorFactory.make(kind: kind, preset: "small") }
    detector.train(false)
    let images = withSeededGenerator(4) { Tensor.randn([2, 3, 96, 128]) }
    let targets = (0..<2).map { _ in
      MatchTarget(labels: Tensor([0, 1] as [Int]), boxes: Tensor([0.3, 0.3, 0.2, 0.2, 0.6, 0.6, 0.3, 0.4] as [Float], shape: [2, 4]))
    }
    let batch = DetectorBatch(unpaddedImages: images, targets: targets)
    func step(_ precision: Precision) throws -> (total: Double, gradients: [Tensor]) {
      for parameter in detector.parameters() { parameter.grad = nil }
      let loss = try precision.run { try detector.losses(for: batch) }
      loss.total.backward()
      return (loss.total.item(Double.self), detector.parameters().compactMap { $0.grad?.reshaped([-1]) })
    }
    let full = try step(.fp32)
    let reduced = try step(.bf16)
    #expect(abs(reduced.total - full.total) <= 0.03 * abs(full.total), "\(kind): loss \(reduced.total) vs \(full.total)")
    let a = Tensor.cat(full.gradients)
    let b = Tensor.cat(reduced.gradients)
    let cosine = (a * b).sum().item(Double.self) / ((a * a).sum().item(Double.self).squareRoot() * (b * b).sum().item(Double.self).squareRoot())
    #expect(cosine > 0.98, "\(kind): gradient cosine \(cosine)")

    let detectBatch = DetectorBatch(unpaddedImages: images)
    let fp32 = withInferenceMode { detector.detect(detectBatch) }
    let bf16 = withInferenceMode { Precision.bf16.run { detector.detect(detectBatch) } }
    for (x, y) in zip(fp32, bf16) {
      let top = x.filtered(threshold: 0, limit: 5)
      let other = y.filtered(threshold: 0, limit: 5)
      // Untrained RetinaNet heads score every anchor about 0.01, under its 0.05 threshold: nothing to compare.
      guard let best = top.scores.first.map(Double.init), let bestReduced = other.scores.first.map(Double.init) else {
        #expect(top.scores.count == other.scores.count || kind == .retinaNet)
        continue
      }
      #expect(abs(best - bestReduced) <= 0.02, "\(kind): best score \(bestReduced) vs \(best)")
    }
  }

  /// A training-mode step in bf16 (dropout on bfloat16 activations, DINO's and Focus-DETR's denoising
  /// queries): finite losses and gradients for every parameter that gets one.
  @Test(arguments: [ModelKind.detr, .dino, .focusDETR, .sdDETR])
  func bf16TrainingStepWithDropout(kind: ModelKind) throws {
    let detector = try withSeededGenerator(3) { try DetectorFactory.make(kind: kind, preset: "small") }
    detector.train()
    let batch = DeviceParity.sampleBatch()
    let loss = try withSeededGenerator(4) { try Precision.bf16.run { try detector.losses(for: batch) } }
    #expect(loss.total.dtype == .float32)
    #expect(loss.total.item(Double.self).isFinite, "\(kind): loss \(loss.total.item(Double.self))")
    loss.total.backward()
    let gradients = detector.parameters().compactMap(\.grad)
    #expect(!gradients.isEmpty)
    #expect(gradients.allSatisfy { $0.isFinite().all().item(Bool.self) }, "\(kind): a gradient is not finite")
  }
}
