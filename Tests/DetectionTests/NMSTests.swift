import Foundation
import Testing
import Torch
import TorchTestSupport

@testable import Detection

/// The shim's class-wise NMS keeps what a plain greedy NMS keeps, in the same order, on random boxes
/// with tied scores, duplicates and degenerate boxes (goldens from Scripts/goldens/make_nms_goldens.py).
@Suite struct NMSTests {
  let golden = try! Goldens(Bundle.module.url(forResource: "Goldens/nms", withExtension: "safetensors")!)

  @Test func keepListsEqualAPlainGreedyNMS() {
    let cases = golden.contents.metadata["cases"]!.split(separator: ",").map(String.init)
    #expect(cases.count == 10)
    for name in cases {
      let threshold = golden["\(name).threshold"].item(Double.self)
      let keep = Boxes.batchedNonMaximumSuppression(
        golden["\(name).boxes"], scores: golden["\(name).scores"], classes: golden["\(name).classes"], iouThreshold: threshold)
      #expect(keep.asArray(Int64.self) == golden["\(name).keep"].asArray(Int64.self), "\(name)")
      // In float64 too (the kernel's other instantiation).
      let keep64 = Boxes.batchedNonMaximumSuppression(
        golden["\(name).boxes"].to(.float64), scores: golden["\(name).scores"], classes: golden["\(name).classes"], iouThreshold: threshold)
      #expect(keep64.asArray(Int64.self) == golden["\(name).keep"].asArray(Int64.self), "\(name) in float64")
    }
  }
}

/// The aligned IoU and GIoU (RetinaNet's and SD-DETR's losses) equal the diagonal of the pairwise
/// ones, which equal transformers' (MatchingTests).
@Suite struct AlignedBoxTests {
  @Test func alignedEqualsTheDiagonalOfPairwise() {
    let generator = Generator(seed: 3)
    let corner = Tensor.rand([50, 2], generator: generator)
    let a = Tensor.cat([corner, corner + Tensor.rand([50, 2], generator: generator)], dim: 1)
    let b = a + (Tensor.rand([50, 4], generator: generator) - 0.5) * 0.4
    let b2 = Tensor.cat([b[.all, 0..<2].minimum(b[.all, 2..<4]), b[.all, 0..<2].maximum(b[.all, 2..<4])], dim: 1)
    let index = Tensor.arange(50).unsqueezed(dim: 1)
    let iou = Boxes.pairwiseIoU(a, b2).iou.gather(dim: 1, index: index).squeezed(dim: 1)
    let giou = Boxes.pairwiseGeneralizedIoU(a, b2).gather(dim: 1, index: index).squeezed(dim: 1)
    expectClose(Boxes.alignedIoU(a, b2), iou, relative: 0, absolute: 1e-6, "IoU")
    expectClose(Boxes.alignedGeneralizedIoU(a, b2), giou, relative: 0, absolute: 1e-6, "GIoU")
  }
}
