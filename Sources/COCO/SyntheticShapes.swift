import Foundation

/// The built-in dataset: shapes of several classes on textured backgrounds, with COCO annotations.
///
/// Objects vary in class, colour, size (small, medium and large by COCO's area ranges, relative to
/// the image size), aspect ratio and overlap (each keeps at least 60% of its pixels visible), so that
/// mAP is meaningful and not trivially 1. The same seed gives the same bytes.
public enum SyntheticShapes {
  /// Changes whenever the same seed would give other images or annotations, so that caches of an
  /// older generator are not reused (2: objects keep at least 60% of their pixels visible).
  public static let generatorVersion = 2

  /// The six kinds of shapes; the raw value is the category id.
  public enum Shape: Int, CaseIterable, Sendable {
    case rectangle = 1, ellipse, triangle, cross, diamond, ring

    public var name: String {
      switch self {
      case .rectangle: "rectangle"
      case .ellipse: "ellipse"
      case .triangle: "triangle"
      case .cross: "cross"
      case .diamond: "diamond"
      case .ring: "ring"
      }
    }

    /// Whether the point (u, v), relative to the box with (0, 0) at its centre and ±1 at its edges, is inside.
    func contains(u: Double, v: Double) -> Bool {
      switch self {
      case .rectangle: return true
      case .ellipse: return u * u + v * v <= 1
      case .triangle: return v >= 2 * Swift.abs(u) - 1
      case .cross: return Swift.abs(u) <= 0.3 || Swift.abs(v) <= 0.3
      case .diamond: return Swift.abs(u) + Swift.abs(v) <= 1
      case .ring:
        let r = u * u + v * v
        return r <= 1 && r >= 0.36
      }
    }

    /// The fraction of its box the shape covers (for the annotation's area, like a segment's area).
    var fill: Double {
      switch self {
      case .rectangle: 1
      case .ellipse: Double.pi / 4
      case .triangle: 0.5
      case .cross: 0.51
      case .diamond: 0.5
      case .ring: Double.pi / 4 * 0.64
      }
    }
  }

  /// Which object sizes an image gets.
  public enum ObjectSizes: String, CaseIterable, Sendable {
    /// Small, medium and large by COCO's area ranges at 320 pixels, in equal shares (scaled with the image).
    case allAreaRanges = "all"
    /// Medium and large only: at least 11% of the image side. For small images, whose "small" objects
    /// would be a few pixels wide.
    case mediumAndLarge = "medium-large"
  }

  /// What `generate` wrote.
  public struct Summary: Sendable {
    public var trainImages: Int
    public var validationImages: Int
    public var objects: Int
    public var trainAnnotations: URL
    public var validationAnnotations: URL
    public var imageDirectory: URL
  }

  /// Writes `images/NNNNNN.jpg`, `annotations/train.json` and `annotations/val.json` under `directory`;
  /// one image in `validationEvery` goes to the validation split.
  @discardableResult
  public static func generate(
    to directory: URL, images count: Int, size: Int, seed: UInt64, objectSizes: ObjectSizes = .allAreaRanges, validationEvery: Int = 8
  ) throws -> Summary {
    precondition(count > 0 && size >= 64, "synthetic dataset: need at least one image of at least 64 pixels")
    let imageDirectory = directory.appendingPathComponent("images")
    let annotationDirectory = directory.appendingPathComponent("annotations")
    for folder in [imageDirectory, annotationDirectory] {
      do {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
      } catch {
        throw ImageError(path: folder.path, problem: "cannot be created (\(error.localizedDescription))")
      }
    }
    let categories = Shape.allCases.map { COCOAnnotations.Category(id: $0.rawValue, name: $0.name, supercategory: "shape") }
    var train = COCOAnnotations(images: [], annotations: [], categories: categories)
    var validation = COCOAnnotations(images: [], annotations: [], categories: categories)
    var nextAnnotationId = 1
    for index in 0..<count {
      var random = SeededRandom(seed: seed, stream: 0, item: UInt64(index))
      let (image, objects) = render(size: size, objectSizes: objectSizes, random: &random)
      let id = index + 1
      let fileName = String(format: "%06d.jpg", id)
      try image.write(to: imageDirectory.appendingPathComponent(fileName), jpegQuality: 92)
      let info = COCOAnnotations.ImageInfo(id: id, fileName: fileName, width: size, height: size)
      var annotations: [COCOAnnotations.Annotation] = []
      for object in objects {
        annotations.append(.init(id: nextAnnotationId, imageId: id, categoryId: object.shape.rawValue, bbox: object.box, area: object.area))
        nextAnnotationId += 1
      }
      if index % validationEvery == validationEvery - 1 {
        validation.images.append(info)
        validation.annotations += annotations
      } else {
        train.images.append(info)
        train.annotations += annotations
      }
    }
    let trainURL = annotationDirectory.appendingPathComponent("train.json")
    let validationURL = annotationDirectory.appendingPathComponent("val.json")
    try train.write(to: trainURL)
    try validation.write(to: validationURL)
    return Summary(
      trainImages: train.images.count, validationImages: validation.images.count, objects: nextAnnotationId - 1, trainAnnotations: trainURL,
      validationAnnotations: validationURL, imageDirectory: imageDirectory)
  }

  struct Object {
    var shape: Shape
    /// [x, y, w, h] in pixels.
    var box: [Double]
    var area: Double
    /// The share of the object's pixels left uncovered by the objects drawn after it.
    var visibleFraction: Double = 1
  }

  /// The least share of an object's pixels that objects drawn over it may leave visible: a placement
  /// that would hide more of an earlier object is tried elsewhere. Without it, large objects drawn
  /// last hide earlier ones whose boxes stay annotated, which no detector can find.
  static let minimumVisibleFraction = 0.6

  /// Placements tried for an object before it is left out of the image.
  static let placementAttempts = 20

  /// One image and its objects, drawn back to front: later objects may cover part of earlier ones,
  /// never more than `1 - minimumVisibleFraction` of any.
  static func render(size: Int, objectSizes: ObjectSizes = .allAreaRanges, random: inout SeededRandom) -> (Image, [Object]) {
    var image = background(size: size, random: &random)
    let background = averageColor(image)
    var objects: [Object] = []
    var coverage = Coverage(size: size)
    for _ in 0..<random.integer(1, 6) {
      let shape = Shape.allCases[random.integer(0, Shape.allCases.count - 1)]
      // Side of a square of the same area: small (< 32²), medium, or large (> 96²) at 320 pixels, scaled with the image.
      let scale = Double(size) / 320
      let side: Double
      switch objectSizes == .allAreaRanges ? random.integer(0, 2) : random.integer(1, 2) {
      case 0: side = random.uniform(14, 30) * scale
      case 1: side = random.uniform(36, 90) * scale
      default: side = random.uniform(100, 180) * scale
      }
      let aspect = Foundation.exp(random.uniform(-0.6, 0.6))
      let width = Swift.min(Double(size) - 2, (side / shape.fill.squareRoot()) * aspect.squareRoot()).rounded()
      let height = Swift.min(Double(size) - 2, (side / shape.fill.squareRoot()) / aspect.squareRoot()).rounded()
      let color = contrastingColor(to: background, random: &random)
      for _ in 0..<placementAttempts {
        let x = random.uniform(0, Double(size) - width).rounded()
        let y = random.uniform(0, Double(size) - height).rounded()
        let box = (x, y, width, height)
        guard coverage.place(shape, in: box, keepingVisible: minimumVisibleFraction) else { continue }
        draw(shape, in: box, color: color, on: &image)
        objects.append(Object(shape: shape, box: [x, y, width, height], area: (width * height * shape.fill * 100).rounded() / 100))
        break
      }
    }
    for index in objects.indices { objects[index].visibleFraction = coverage.visibleFraction(of: index) }
    addNoise(to: &image, amount: random.uniform(2, 10), random: &random)
    return (image, objects)
  }

  /// Which object each pixel shows (by the pixel's centre), to keep every object mostly visible.
  struct Coverage {
    let size: Int
    /// Per pixel, row-major: the index of the object on top, or -1 for the background.
    private var owner: [Int32]
    private var pixelCounts: [Int] = []
    private var visibleCounts: [Int] = []

    init(size: Int) {
      self.size = size
      owner = Array(repeating: -1, count: size * size)
    }

    /// Puts the shape on top when every earlier object keeps at least `fraction` of its pixels
    /// visible; otherwise changes nothing and returns false.
    mutating func place(_ shape: Shape, in box: (Double, Double, Double, Double), keepingVisible fraction: Double) -> Bool {
      let pixels = Self.pixels(of: shape, in: box, size: size)
      var covered: [Int: Int] = [:]
      for pixel in pixels where owner[pixel] >= 0 { covered[Int(owner[pixel]), default: 0] += 1 }
      for (object, count) in covered where Double(visibleCounts[object] - count) < fraction * Double(pixelCounts[object]) {
        return false
      }
      for (object, count) in covered { visibleCounts[object] -= count }
      let index = Int32(pixelCounts.count)
      for pixel in pixels { owner[pixel] = index }
      pixelCounts.append(pixels.count)
      visibleCounts.append(pixels.count)
      return true
    }

    func visibleFraction(of object: Int) -> Double {
      pixelCounts[object] == 0 ? 1 : Double(visibleCounts[object]) / Double(pixelCounts[object])
    }

    /// Row-major indices of the pixels whose centre lies inside the shape.
    static func pixels(of shape: Shape, in box: (Double, Double, Double, Double), size: Int) -> [Int] {
      let (x0, y0, width, height) = box
      var result: [Int] = []
      for py in Swift.max(0, Int(y0))..<Swift.min(size, Int(y0 + height)) {
        for px in Swift.max(0, Int(x0))..<Swift.min(size, Int(x0 + width)) {
          let u = (Double(px) + 0.5 - x0) / width * 2 - 1
          let v = (Double(py) + 0.5 - y0) / height * 2 - 1
          if shape.contains(u: u, v: v) { result.append(py * size + px) }
        }
      }
      return result
    }
  }

  /// A textured background: a gradient, stripes or blotches in random colours.
  static func background(size: Int, random: inout SeededRandom) -> Image {
    func randomColor() -> (Double, Double, Double) { (random.uniform(0, 255), random.uniform(0, 255), random.uniform(0, 255)) }
    let a = randomColor()
    let b = randomColor()
    let kind = random.integer(0, 2)
    let frequency = random.uniform(0.02, 0.15)
    let angle = random.uniform(0, Double.pi)
    let (cosine, sine) = (Foundation.cos(angle), Foundation.sin(angle))
    var image = Image(width: size, height: size)
    for y in 0..<size {
      for x in 0..<size {
        let along = Double(x) * cosine + Double(y) * sine
        let t: Double
        switch kind {
        case 0: t = along / (Double(size) * 1.5) + 0.25
        case 1: t = (Foundation.sin(along * frequency) + 1) / 2
        default: t = (Foundation.sin(Double(x) * frequency) * Foundation.cos(Double(y) * frequency * 0.7) + 1) / 2
        }
        let w = Swift.min(1, Swift.max(0, t))
        image[x, y] = RGB(clamp(a.0 * (1 - w) + b.0 * w), clamp(a.1 * (1 - w) + b.1 * w), clamp(a.2 * (1 - w) + b.2 * w))
      }
    }
    return image
  }

  /// Fills the shape inside box (x, y, w, h), with 2×2 supersampling at the edges.
  static func draw(_ shape: Shape, in box: (Double, Double, Double, Double), color: RGB, on image: inout Image) {
    let (x0, y0, width, height) = box
    for py in Int(y0)..<Swift.min(image.height, Int(y0 + height)) {
      for px in Int(x0)..<Swift.min(image.width, Int(x0 + width)) {
        var covered = 0
        for (sx, sy) in [(0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75)] {
          let u = (Double(px) + sx - x0) / width * 2 - 1
          let v = (Double(py) + sy - y0) / height * 2 - 1
          if shape.contains(u: u, v: v) { covered += 1 }
        }
        guard covered > 0 else { continue }
        let w = Double(covered) / 4
        let old = image[px, py]
        image[px, py] = RGB(
          clamp(Double(color.red) * w + Double(old.red) * (1 - w)), clamp(Double(color.green) * w + Double(old.green) * (1 - w)),
          clamp(Double(color.blue) * w + Double(old.blue) * (1 - w)))
      }
    }
  }

  static func averageColor(_ image: Image) -> (Double, Double, Double) {
    var sums = (0.0, 0.0, 0.0)
    for index in stride(from: 0, to: image.pixels.count, by: 3) {
      sums.0 += Double(image.pixels[index])
      sums.1 += Double(image.pixels[index + 1])
      sums.2 += Double(image.pixels[index + 2])
    }
    let n = Double(image.width * image.height)
    return (sums.0 / n, sums.1 / n, sums.2 / n)
  }

  /// A random colour at least a fixed distance from the background's average, so objects stay visible.
  static func contrastingColor(to background: (Double, Double, Double), random: inout SeededRandom) -> RGB {
    while true {
      let c = (random.uniform(0, 255), random.uniform(0, 255), random.uniform(0, 255))
      let distance =
        ((c.0 - background.0) * (c.0 - background.0) + (c.1 - background.1) * (c.1 - background.1) + (c.2 - background.2)
          * (c.2 - background.2))
        .squareRoot()
      if distance > 120 { return RGB(clamp(c.0), clamp(c.1), clamp(c.2)) }
    }
  }

  static func addNoise(to image: inout Image, amount: Double, random: inout SeededRandom) {
    for index in image.pixels.indices {
      image.pixels[index] = clamp(Double(image.pixels[index]) + random.normal() * amount)
    }
  }

  static func clamp(_ value: Double) -> UInt8 { UInt8(Swift.max(0, Swift.min(255, value.rounded()))) }
}
