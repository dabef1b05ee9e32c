import Foundation
import Testing
import Torch
import TorchTestSupport

@testable import Detection

/// Focus-DETR's foreground targets on cases computed by hand.
@Suite struct ForegroundSupervisionTests {
  @Test func tokensStrictlyInsideABoxOfTheirScaleAreForeground() {
    let supervision = ForegroundSupervision(strides: [8, 16], ranges: [-1...64, 64...128])
    let levels = FeatureLevels(shapes: [(4, 4), (2, 2)])
    // A 32x32 image; the box (4, 4)-(20, 20) in pixels: centres at 4, 12, 20, 28 on level 0, so only
    // (12, 12) lies strictly inside (4 and 20 are on its sides); its largest distance, 8, is level 0's.
    let box = MatchTarget(labels: Tensor([0] as [Int]), boxes: Tensor([0.375, 0.375, 0.5, 0.5] as [Float], shape: [1, 4]))
    let empty = MatchTarget(labels: Tensor([] as [Int]), boxes: Tensor.zeros([0, 4]))
    let targets = supervision.targets(levels: levels, targets: [box, empty], imageSizes: [(32, 32), (32, 32)])
    var expected = [Float](repeating: 0, count: 2 * 20)
    expected[1 * 4 + 1] = 1
    #expect(targets.asArray(Float.self) == expected)
    // The box (0, 0)-(100, 100) of a 200x200 image: the level-1 centres (8 and 24) are 76 to 92 px
    // from its far sides, in (64, 128]; the level-0 ones (4 to 28) 72 to 96, beyond level 0's 64.
    let large = MatchTarget(labels: Tensor([0] as [Int]), boxes: Tensor([0.25, 0.25, 0.5, 0.5] as [Float], shape: [1, 4]))
    let big = supervision.targets(levels: levels, targets: [large], imageSizes: [(200, 200)])
    #expect(big[0, 0..<16].sum().item(Float.self) == 0, "level 0 answers to boxes up to 64 px from a side")
    #expect(big[0, 16...].sum().item(Float.self) == 4, "every level-1 token is inside and between 64 and 128 px from a side")
  }

  @Test func theLossIsNormalizedPerImageByItsForegroundCount() {
    let supervision = ForegroundSupervision(strides: [8], ranges: [-1...64])
    let logits = Tensor([0.5, -1, 2, 0, 1, -2] as [Float], shape: [2, 3])
    let targets = Tensor([1, 1, 0, 0, 0, 0] as [Float], shape: [2, 3])
    let perToken = sigmoidFocalLoss(logits, targets: targets)
    let expected = (perToken[0].sum() / 2 + perToken[1].sum() / 1) / 2
    expectClose(supervision.loss(logits: logits, targets: targets), expected, relative: 1e-6, "per image, then the mean")
  }
}
