import Foundation
import Testing

@testable import COCO

/// The built-in classification task a backbone is pretrained on.
@Suite struct ClassificationCropTests {
  @Test func cropsAreDeterministicSquareAndLabelledWithTheCentredShape() {
    let crops = SyntheticShapes.classificationCrops(images: 30, size: 128, cropSize: 32, seed: 7)
    let again = SyntheticShapes.classificationCrops(images: 30, size: 128, cropSize: 32, seed: 7)
    #expect(crops.count == again.count && zip(crops, again).allSatisfy { $0.image.pixels == $1.image.pixels && $0.label == $1.label })
    #expect(crops.allSatisfy { $0.image.width == 32 && $0.image.height == 32 })
    #expect(crops.allSatisfy { (0..<SyntheticShapes.cropClassNames.count).contains($0.label) })
    // Every class appears, background included, and objects outnumber background (about one per image).
    let counts = Dictionary(grouping: crops, by: \.label).mapValues(\.count)
    #expect(Set(counts.keys) == Set(0..<7), "\(counts)")
    #expect(counts[0]! <= 30 && crops.count - counts[0]! > counts[0]!, "\(counts)")
    let other = SyntheticShapes.classificationCrops(images: 30, size: 128, cropSize: 32, seed: 8)
    #expect(other.first?.image.pixels != crops.first?.image.pixels)
  }

  @Test func windowsStayInsideTheImageAndBackgroundHoldsNoCentre() {
    let window = SyntheticShapes.squareWindow(centreX: 5, centreY: 120, side: 40.4, imageSize: 128)
    #expect(window == (0, 88, 40))
    let whole = SyntheticShapes.squareWindow(centreX: 64, centreY: 64, side: 300, imageSize: 128)
    #expect(whole == (0, 0, 128))
    // A box whose centre is in the window, and one that only grazes it.
    #expect(!SyntheticShapes.holdsLittle(of: [10, 10, 20, 20], window: (0, 0, 30)))
    #expect(SyntheticShapes.holdsLittle(of: [25, 0, 20, 20], window: (0, 0, 30)))
    #expect(!SyntheticShapes.holdsLittle(of: [15, 0, 20, 20], window: (0, 0, 30)), "half its area inside")
  }
}
