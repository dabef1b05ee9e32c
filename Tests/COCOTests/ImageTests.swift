import Foundation
import Testing

@testable import COCO

/// Decoding against Pillow (fixtures from Scripts/goldens/make_image_fixtures.py).
@Suite struct ImageTests {
  static func fixture(_ name: String) -> URL { Bundle.module.url(forResource: "Fixtures/\(name)", withExtension: nil)! }

  static func expected(_ name: String) throws -> Image {
    let data = try Data(contentsOf: fixture("\(name).rgb"))
    let width = Int(data[0]) | Int(data[1]) << 8
    let height = Int(data[2]) | Int(data[3]) << 8
    return Image(width: width, height: height, pixels: Array(data.dropFirst(4)))
  }

  @Test(arguments: [
    ("rgb_jpeg", "jpg", 2), ("gray", "jpg", 2), ("cmyk", "jpg", 2), ("orientation3", "jpg", 2), ("orientation6", "jpg", 2),
    ("orientation8", "jpg", 2), ("rgb_png", "png", 0), ("rgba", "png", 0), ("gray16", "png", 0), ("palette", "png", 0),
  ])
  func decodesLikePillow(name: String, fileExtension: String, tolerance: Int) throws {
    let image = try Image(contentsOf: Self.fixture("\(name).\(fileExtension)"))
    let reference = try Self.expected(name)
    #expect(image.width == reference.width && image.height == reference.height, "\(name): size")
    guard image.pixels.count == reference.pixels.count else { return }
    let worst = zip(image.pixels, reference.pixels).map { abs(Int($0) - Int($1)) }.max() ?? 0
    #expect(worst <= tolerance, "\(name): largest difference \(worst) from Pillow")
  }

  @Test func encodesAndDecodesBack() throws {
    let image = try Image(contentsOf: Self.fixture("rgb_png.png"))
    #expect(try Image(encoded: image.pngData()) == image, "PNG is lossless")
    var smooth = Image(width: 32, height: 24)
    for y in 0..<24 { for x in 0..<32 { smooth[x, y] = RGB(UInt8(x * 8), UInt8(y * 10), 128) } }
    let jpeg = try Image(encoded: smooth.jpegData(quality: 100))
    let worst = zip(jpeg.pixels, smooth.pixels).map { abs(Int($0) - Int($1)) }.max() ?? 0
    #expect(jpeg.width == smooth.width && worst <= 8, "JPEG at quality 100 stays close (largest difference \(worst))")
  }

  @Test func badFilesThrowErrorsNamingTheFile() throws {
    let valid = try Data(contentsOf: Self.fixture("rgb_jpeg.jpg"))
    let cases: [(String, Data)] = [
      ("empty", Data()), ("text", Data("hello, not an image".utf8)), ("truncated jpeg", valid.prefix(valid.count / 2)),
      ("jpeg header only", valid.prefix(20)), ("png signature only", Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])),
    ]
    for (name, bytes) in cases {
      #expect("\(name)") {
        try Image(encoded: bytes, path: "photos/\(name).jpg")
      } throws: { error in
        "\(error)".hasPrefix("photos/\(name).jpg: ")
      }
    }
    #expect(throws: ImageError.self) { try Image(contentsOf: URL(fileURLWithPath: "/nonexistent/picture.jpg")) }
  }

  /// Truncated and mutated files: never a crash; either a clean error or an image of the declared size.
  @Test(arguments: ["rgb_jpeg.jpg", "cmyk.jpg", "orientation6.jpg", "rgb_png.png", "rgba.png", "gray16.png", "palette.png"])
  func fuzzedFilesNeverCrash(name: String) throws {
    let original = try Data(contentsOf: Self.fixture(name))
    var random = SeededRandom(seed: 99, stream: 0, item: UInt64(original.count))
    var failures = 0
    var decoded = 0
    for round in 0..<300 {
      var bytes = original
      if round % 3 == 0 {
        bytes = bytes.prefix(random.integer(0, bytes.count - 1))
      } else {
        for _ in 0..<random.integer(1, 8) {
          bytes[random.integer(0, bytes.count - 1)] = UInt8(random.integer(0, 255))
        }
      }
      do {
        let image = try Image(encoded: bytes, path: "fuzz")
        #expect(image.pixels.count == image.width * image.height * 3)
        decoded += 1
      } catch let error as ImageError {
        #expect(error.path == "fuzz" && !error.problem.isEmpty)
        failures += 1
      }
    }
    #expect(failures > 0, "truncations must be reported")
    #expect(failures + decoded == 300)
  }

  @Test func geometryAndResizing() {
    var image = Image(width: 3, height: 2)
    image[0, 0] = RGB(10, 0, 0)
    image[2, 1] = RGB(0, 20, 0)
    #expect(image.flippedHorizontally()[2, 0] == RGB(10, 0, 0))
    #expect(image.rotated180()[0, 0] == RGB(0, 20, 0))
    #expect(image.transposed().width == 2 && image.transposed()[1, 2] == RGB(0, 20, 0))
    #expect(image.cropped(x: 1, y: 1, width: 2, height: 1)[1, 0] == RGB(0, 20, 0))
    let flat = Image(width: 40, height: 30, color: RGB(200, 100, 50))
    #expect(flat.resized(width: 17, height: 61) == Image(width: 17, height: 61, color: RGB(200, 100, 50)), "a flat image stays flat")
  }

  @Test func drawsBoxesAndCaptionsInClassColours() {
    var image = Image(width: 80, height: 60, color: RGB(255, 255, 255))
    image.draw([DrawnBox(box: [20, 25, 70, 55], classIndex: 3, caption: "cat 0.9")])
    let color = Image.color(forClass: 3)
    func distance(_ a: RGB, _ b: RGB) -> Int { abs(Int(a.red) - Int(b.red)) + abs(Int(a.green) - Int(b.green)) + abs(Int(a.blue) - Int(b.blue)) }
    // Anti-aliased: the edge's pixels blend with the outline and the background, so look near them.
    let edge = (52...57).map { image[45, $0] }
    #expect(edge.contains { distance($0, color) < 90 }, "the bottom edge has the class colour: \(edge)")
    #expect(edge.contains { max($0.red, $0.green, $0.blue) < 160 }, "a dark outline keeps the box readable on light backgrounds: \(edge)")
    #expect(image[45, 40] == RGB(255, 255, 255), "the inside is untouched")
    let tag = (20..<60).flatMap { x in (10..<26).map { image[x, $0] } }
    #expect(tag.contains { distance($0, color) < 40 } && tag.contains { distance($0, color) > 200 }, "the caption tag holds text")
    #expect(Set((0..<10).map { Image.color(forClass: $0) }).count == 10, "distinct colours")
  }
}
