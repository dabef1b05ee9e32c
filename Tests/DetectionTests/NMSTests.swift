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
