import Foundation
import Testing
import Torch
import TorchTestSupport

@testable import Detection

/// The set criterion against transformers' DETR and Deformable DETR losses (with auxiliary layers).
@Suite struct CriterionTests {
  let golden = try! Goldens(Bundle.module.url(forResource: "Goldens/detection", withExtension: "safetensors")!)

  @Test(arguments: [
    (
      "detr_loss",
      SetCriterion(
        matcher: HungarianMatcher(classWeight: 1, boxWeight: 5, giouWeight: 2, classificationCost: .softmax),
        classification: .crossEntropy(noObjectWeight: 0.1), classWeight: 1, boxWeight: 5, giouWeight: 2)
    ),
    (
      "deformable_loss",
      SetCriterion(
        matcher: HungarianMatcher(classWeight: 2, boxWeight: 5, giouWeight: 2, classificationCost: .focal(alpha: 0.25, gamma: 2)),
        classification: .focal(alpha: 0.25, gamma: 2), classWeight: 2, boxWeight: 5, giouWeight: 2)
    ),
  ])
  func lossTermsAndGradientsEqualTransformers(name: String, criterion: SetCriterion) throws {
    let layers = (0..<3).map {
      LayerPredictions(
        logits: golden["\(name).layer\($0).logits"].clone().requiringGrad(),
        boxes: golden["\(name).layer\($0).boxes"].clone().requiringGrad())
    }
    let targets = (0..<2).map { MatchTarget(labels: golden["\(name).target\($0).labels"], boxes: golden["\(name).target\($0).boxes"]) }
    let loss = try criterion(layers[2], auxiliary: Array(layers[0..<2]), targets: targets)
    #expect(loss.terms.count == 9)
    for term in loss.terms {
      expectClose(term.value, golden["\(name).loss.\(term.name)"], relative: 1e-4, absolute: 1e-6, term.name)
    }
    expectClose(loss.total, golden["\(name).total"], relative: 1e-4, absolute: 1e-6, "total")
    loss.total.backward()
    for (index, layer) in layers.enumerated() {
      expectClose(
        layer.logits.grad!, golden["\(name).layer\(index).logits_grad"], relative: 1e-3, absolute: 1e-6, "layer \(index) logits gradient")
      expectClose(
        layer.boxes.grad!, golden["\(name).layer\(index).boxes_grad"], relative: 1e-3, absolute: 1e-6, "layer \(index) boxes gradient")
    }
  }

  @Test func imagesWithoutBoxesAndFocalLossOnItsOwn() throws {
    let criterion = SetCriterion(
      matcher: HungarianMatcher(classWeight: 2, boxWeight: 5, giouWeight: 2, classificationCost: .focal(alpha: 0.25, gamma: 2)),
      classification: .focal(alpha: 0.25, gamma: 2), classWeight: 2, boxWeight: 5, giouWeight: 2)
    let predictions = LayerPredictions(
      logits: Tensor.zeros([1, 4, 3]).requiringGrad(), boxes: Tensor.full([1, 4, 4], 0.5).requiringGrad())
    let empty = MatchTarget(labels: Tensor.zeros([0], dtype: .int64), boxes: Tensor.zeros([0, 4]))
    let loss = try criterion(predictions, targets: [empty])
    #expect(loss.boxCount == 1 && loss.matches[0].queries.isEmpty)
    // Every logit 0: p = 0.5, target 0: FL = 0.75 · 0.25 · log 2 per element, 12 elements, over 1 box.
    expectClose(loss.terms[0].value, Tensor(scalar: Float(12 * 0.75 * 0.25 * log(2.0))), relative: 1e-5, "focal loss")
    #expect(loss.terms[1].value.item(Float.self) == 0 && loss.terms[2].value.item(Float.self) == 0)
    loss.total.backward()
    #expect(predictions.logits.grad != nil)
  }
}
