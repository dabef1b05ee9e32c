import Foundation

extension SyntheticShapes {
  /// One example of the shapes' classification task: a square crop and what it shows.
  public struct Crop: Sendable {
    /// `cropSize × cropSize` pixels.
    public var image: Image
    /// 0: background (no object's centre in the crop); 1...6: the centred object's `Shape.rawValue`.
    public var label: Int
  }

  /// The classification task's class names, indexed by `Crop.label`.
  public static var cropClassNames: [String] { ["background"] + Shape.allCases.map(\.name) }

  /// The built-in classification task from which a backbone is pretrained, as ImageNet pretrains the
  /// references' backbones: square crops of freshly rendered images (the same generator as the
  /// detection set, with its own `seed`, so that no detection image is seen), each centred on one
  /// object with context (the crop's side 1.2–2× the box's longer side, the centre moved by up to
  /// 15% of it), resized to `cropSize`, labelled with the object's shape; and one background crop per
  /// image where one fits (a random square of 0.25–0.5 of the image whose window holds no object's
  /// centre and at most a quarter of any box). Deterministic in `seed`.
  public static func classificationCrops(
    images count: Int, size: Int, cropSize: Int, seed: UInt64, objectSizes: ObjectSizes = .mediumAndLarge
  ) -> [Crop] {
    precondition(count > 0 && size >= 64 && cropSize >= 16, "classification crops: need images of at least 64 pixels and crops of at least 16")
    var crops: [Crop] = []
    for index in 0..<count {
      var random = SeededRandom(seed: seed, stream: 0, item: UInt64(index))
      let (image, objects) = render(size: size, objectSizes: objectSizes, random: &random)
      var placement = SeededRandom(seed: seed, stream: 1, item: UInt64(index))
      for object in objects where object.visibleFraction >= minimumVisibleFraction {
        let (x, y, width, height) = (object.box[0], object.box[1], object.box[2], object.box[3])
        let side = Swift.min(Double(size), Swift.max(width, height) * placement.uniform(1.2, 2))
        let centreX = x + width / 2 + placement.uniform(-0.15, 0.15) * side
        let centreY = y + height / 2 + placement.uniform(-0.15, 0.15) * side
        let window = squareWindow(centreX: centreX, centreY: centreY, side: side, imageSize: size)
        crops.append(Crop(image: cut(image, window, to: cropSize), label: object.shape.rawValue))
      }
      for _ in 0..<placementAttempts {
        let side = placement.uniform(0.25, 0.5) * Double(size)
        let window = squareWindow(
          centreX: placement.uniform(0, Double(size)), centreY: placement.uniform(0, Double(size)), side: side, imageSize: size)
        guard objects.allSatisfy({ holdsLittle(of: $0.box, window: window) }) else { continue }
        crops.append(Crop(image: cut(image, window, to: cropSize), label: 0))
        break
      }
    }
    return crops
  }

  /// A square `(x, y, side)` of whole pixels around the centre, moved inside the image.
  static func squareWindow(centreX: Double, centreY: Double, side: Double, imageSize: Int) -> (x: Int, y: Int, side: Int) {
    let whole = Swift.max(1, Swift.min(imageSize, Int(side.rounded())))
    let x = Swift.max(0, Swift.min(imageSize - whole, Int((centreX - Double(whole) / 2).rounded())))
    let y = Swift.max(0, Swift.min(imageSize - whole, Int((centreY - Double(whole) / 2).rounded())))
    return (x, y, whole)
  }

  /// Whether a background window leaves out the box's centre and at most a quarter of its area.
  static func holdsLittle(of box: [Double], window: (x: Int, y: Int, side: Int)) -> Bool {
    let (left, top, right, bottom) = (Double(window.x), Double(window.y), Double(window.x + window.side), Double(window.y + window.side))
    let (centreX, centreY) = (box[0] + box[2] / 2, box[1] + box[3] / 2)
    if centreX >= left && centreX < right && centreY >= top && centreY < bottom { return false }
    let overlapWidth = Swift.max(0, Swift.min(right, box[0] + box[2]) - Swift.max(left, box[0]))
    let overlapHeight = Swift.max(0, Swift.min(bottom, box[1] + box[3]) - Swift.max(top, box[1]))
    return overlapWidth * overlapHeight <= 0.25 * box[2] * box[3]
  }

  static func cut(_ image: Image, _ window: (x: Int, y: Int, side: Int), to cropSize: Int) -> Image {
    image.cropped(x: window.x, y: window.y, width: window.side, height: window.side).resized(width: cropSize, height: cropSize)
  }
}
