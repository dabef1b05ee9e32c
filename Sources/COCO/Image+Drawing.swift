import Foundation

/// A box to draw: [x0, y0, x1, y1] in pixels, a class index (picks the colour), and its caption.
public struct DrawnBox: Sendable {
  public var box: [Double]
  public var classIndex: Int
  public var caption: String

  public init(box: [Double], classIndex: Int, caption: String) {
    self.box = box
    self.classIndex = classIndex
    self.caption = caption
  }
}

/// A rectangle in pixels: origin top-left, y down.
public struct PixelRect: Sendable, Equatable {
  public var x: Double
  public var y: Double
  public var width: Double
  public var height: Double

  public init(x: Double, y: Double, width: Double, height: Double) {
    (self.x, self.y, self.width, self.height) = (x, y, width, height)
  }

  func overlap(_ other: PixelRect) -> Double {
    let w = Swift.min(x + width, other.x + other.width) - Swift.max(x, other.x)
    let h = Swift.min(y + height, other.y + other.height) - Swift.max(y, other.y)
    return w > 0 && h > 0 ? w * h : 0
  }
}

/// Where each box's caption tag goes: just above the box, else inside its top, else below it, slid
/// sideways to stay inside the image, at the first place that overlaps no tag already placed (the
/// least overlapping one when every place does). Tags are placed in the order given.
public enum LabelPlacement {
  public static func place(tagSizes: [(width: Double, height: Double)], boxes: [[Double]], imageWidth: Double, imageHeight: Double)
    -> [PixelRect]
  {
    var placed: [PixelRect] = []
    for (size, box) in zip(tagSizes, boxes) {
      let width = Swift.min(size.width, imageWidth)
      let height = Swift.min(size.height, imageHeight)
      let x = Swift.min(Swift.max(0, box[0]), Swift.max(0, imageWidth - width))
      let candidates = [box[1] - height, box[1], box[3], box[3] - height].map { top in
        PixelRect(x: x, y: Swift.min(Swift.max(0, top), imageHeight - height), width: width, height: height)
      }
      let best = candidates.min { a, b in
        placed.reduce(0) { $0 + $1.overlap(a) } < placed.reduce(0) { $0 + $1.overlap(b) }
      }!
      placed.append(best)
    }
    return placed
  }
}

extension Image {
  /// A distinct, saturated colour per class index (golden-ratio hues): the same category has the
  /// same colour in every image.
  public static func color(forClass index: Int) -> RGB {
    let hue = (Double(index) * 0.618_033_988_75).truncatingRemainder(dividingBy: 1)
    let sector = hue * 6
    let f = sector - sector.rounded(.down)
    let (v, p) = (235.0, 40.0)
    let q = v - (v - p) * f
    let t = p + (v - p) * f
    let (r, g, b): (Double, Double, Double)
    switch Int(sector) % 6 {
    case 0: (r, g, b) = (v, t, p)
    case 1: (r, g, b) = (q, v, p)
    case 2: (r, g, b) = (p, v, t)
    case 3: (r, g, b) = (p, q, v)
    case 4: (r, g, b) = (t, p, v)
    default: (r, g, b) = (v, p, q)
    }
    return RGB(UInt8(r), UInt8(g), UInt8(b))
  }

  /// The caption font size for an image: readable on small images, in proportion on large ones.
  static func captionSize(width: Int, height: Int) -> Double { Swift.max(10, Swift.min(22, Double(Swift.min(width, height)) / 40)) }

  /// Draws each box, anti-aliased in its class colour over a thin dark outline (readable on any
  /// background), and its caption in DejaVu Sans on a tag of the class colour, kept inside the image
  /// and off the other tags where there is room (`LabelPlacement`).
  public mutating func draw(_ boxes: [DrawnBox]) {
    guard !boxes.isEmpty else { return }
    let canvas = Canvas(image: self)
    let fontSize = Self.captionSize(width: width, height: height)
    let lineWidth = Swift.max(1.5, fontSize / 7)
    canvas.setFont(size: fontSize)
    let padding = fontSize * 0.25
    let sizes = boxes.map { item -> (width: Double, height: Double) in
      let metrics = canvas.measure(item.caption)
      return (metrics.width + 2 * padding, metrics.ascent + metrics.descent + padding)
    }
    for item in boxes {
      let (x0, y0, x1, y1) = (item.box[0], item.box[1], item.box[2], item.box[3])
      canvas.setColor(RGB(20, 20, 20), alpha: 0.8)
      canvas.setLine(width: lineWidth + 2)
      canvas.strokeRectangle(x: x0, y: y0, width: x1 - x0, height: y1 - y0)
      canvas.setColor(Self.color(forClass: item.classIndex))
      canvas.setLine(width: lineWidth)
      canvas.strokeRectangle(x: x0, y: y0, width: x1 - x0, height: y1 - y0)
    }
    let tags = LabelPlacement.place(tagSizes: sizes, boxes: boxes.map(\.box), imageWidth: Double(width), imageHeight: Double(height))
    for (item, tag) in zip(boxes, tags) {
      let color = Self.color(forClass: item.classIndex)
      canvas.setColor(color, alpha: 0.9)
      canvas.fillRectangle(x: tag.x, y: tag.y, width: tag.width, height: tag.height)
      let dark = Int(color.red) * 299 + Int(color.green) * 587 + Int(color.blue) * 114 > 140_000
      canvas.setColor(dark ? RGB(0, 0, 0) : RGB(255, 255, 255))
      let ascent = canvas.measure(item.caption).ascent
      canvas.text(item.caption, x: tag.x + padding, y: tag.y + padding / 2 + ascent)
    }
    self = canvas.image
  }

  /// Fills [x0, x1) × [y0, y1), clipped to the image.
  public mutating func fillRectangle(_ x0: Int, _ y0: Int, _ x1: Int, _ y1: Int, color: RGB) {
    let (left, right) = (Swift.max(0, x0), Swift.min(width, x1))
    let (top, bottom) = (Swift.max(0, y0), Swift.min(height, y1))
    guard left < right, top < bottom else { return }
    for y in top..<bottom { for x in left..<right { self[x, y] = color } }
  }
}
