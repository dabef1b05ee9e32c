import Foundation
import Testing

@testable import COCO

/// Boxes and captions drawn with cairo: tags stay inside the image and off each other where there is room.
@Suite struct DrawingTests {
  @Test func aTagNearTheBorderStaysInsideTheImage() {
    let boxes: [[Double]] = [[1300, 0, 1333, 30], [-20, 780, 40, 800], [0, 0, 1333, 800]]
    let tags = LabelPlacement.place(
      tagSizes: Array(repeating: (width: 160, height: 20), count: 3), boxes: boxes, imageWidth: 1333, imageHeight: 800)
    for tag in tags {
      #expect(tag.x >= 0 && tag.y >= 0 && tag.x + tag.width <= 1333 && tag.y + tag.height <= 800, "\(tag)")
    }
  }

  @Test func tagsOfNeighbouringBoxesDoNotOverlapWhereThereIsRoom() {
    // Two boxes starting at the same corner: the second tag goes inside or below instead of on the first.
    let boxes: [[Double]] = [[100, 100, 300, 300], [100, 100, 250, 280]]
    let tags = LabelPlacement.place(tagSizes: [(120, 18), (120, 18)], boxes: boxes, imageWidth: 640, imageHeight: 480)
    #expect(tags[0] == PixelRect(x: 100, y: 82, width: 120, height: 18), "the first tag sits just above its box")
    #expect(tags[0].overlap(tags[1]) == 0, "\(tags)")
  }

  @Test func drawingPaintsTheClassColourAndTheCaption() {
    var image = Image(width: 200, height: 120, color: RGB(255, 255, 255))
    image.draw([DrawnBox(box: [40, 40, 160, 110], classIndex: 2, caption: "dog 0.93")])
    let colors = Set(stride(from: 0, to: image.pixels.count, by: 3).map { RGB(image.pixels[$0], image.pixels[$0 + 1], image.pixels[$0 + 2]) })
    let classColor = Image.color(forClass: 2)
    let boxDrawn = colors.contains {
      abs(Int($0.red) - Int(classColor.red)) <= 12 && abs(Int($0.green) - Int(classColor.green)) <= 12 && abs(Int($0.blue) - Int(classColor.blue)) <= 12
    }
    #expect(boxDrawn, "the box in its class colour")
    let shades = colors.count
    #expect(shades > 20, "anti-aliased edges and text give many shades (\(shades))")
    // The caption is written in the tag above the box: dark or light text pixels inside the tag's rows.
    let tagRows = (20..<40).flatMap { y in (40..<120).map { x in image[x, y] } }
    #expect(tagRows.contains { $0 != Image.color(forClass: 2) && $0 != RGB(255, 255, 255) }, "text is drawn on the tag")
  }
}
