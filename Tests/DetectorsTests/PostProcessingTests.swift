import Foundation
import Testing
import Torch
import TorchTestSupport

@testable import Detection
@testable import Detectors

/// Post-processing against transformers' `post_process_object_detection` (threshold 0) on the same outputs.
@Suite struct PostProcessingTests {
  @Test(arguments: ["detr_r50_small", "conditional_detr_r50_small", "deformable_multi_scale", "deformable_two_stage", "deformable_per_side"])
  func detectionsEqualTransformers(name: String) throws {
    let expected = try Goldens(DETRTests.fixture(name).appendingPathComponent("expected.safetensors"))
    let processing: PostProcessing = name.hasPrefix("detr") ? .softmax : .sigmoidTopK(100)
    let results = processing(logits: expected["logits"], boxes: expected["pred_boxes"], imageSizes: [(480, 640), (300, 200)])
    for (index, result) in results.enumerated() {
      let filtered = result.filtered(threshold: 0, limit: 10_000)
      let scores = expected["post\(index).scores"]
      // transformers keeps its own order (query order for DETR, score order for top-k); compare as sets by score order.
      let order = scores.argsort(dim: 0, descending: true, stable: true)
      expectClose(Tensor(filtered.scores), scores.indexSelect(dim: 0, index: order), relative: 0, absolute: 1e-5, "\(name) scores")
      #expect(filtered.labels == expected["post\(index).labels"].indexSelect(dim: 0, index: order).asArray(Int.self), "\(name) labels")
      expectClose(
        Tensor(filtered.boxes.flatMap { $0.map(Float.init) }, shape: [filtered.boxes.count, 4]),
        expected["post\(index).boxes"].indexSelect(dim: 0, index: order), relative: 1e-5, absolute: 1e-3, "\(name) boxes")
    }
  }

  @Test func thresholdAndLimitKeepTheBest() {
    let detections = ImageDetections(
      scores: [0.2, 0.9, 0.5, 0.7], labels: [0, 1, 2, 3], boxes: [[0, 0, 1, 1], [1, 1, 2, 2], [2, 2, 3, 3], [3, 3, 4, 4]])
    let kept = detections.filtered(threshold: 0.3, limit: 2)
    #expect(kept.scores == [0.9, 0.7] && kept.labels == [1, 3])
  }
}
