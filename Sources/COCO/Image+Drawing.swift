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

extension Image {
  /// A distinct, saturated colour per class index (golden-ratio hues).
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

  /// Draws each box as a rectangle outlined in black (readable on any background), with its caption
  /// on a filled tag of the class colour above the box (inside it when there is no room).
  public mutating func draw(_ boxes: [DrawnBox], lineWidth: Int = 2, textScale: Int = 2) {
    for item in boxes {
      let color = Self.color(forClass: item.classIndex)
      let x0 = Int(item.box[0].rounded()), y0 = Int(item.box[1].rounded())
      let x1 = Int(item.box[2].rounded()), y1 = Int(item.box[3].rounded())
      strokeRectangle(x0 - lineWidth, y0 - lineWidth, x1 + lineWidth, y1 + lineWidth, width: 1, color: RGB(0, 0, 0))
      strokeRectangle(x0, y0, x1, y1, width: lineWidth, color: color)
      let textWidth = item.caption.count * (BitmapFont.glyphWidth + 1) * textScale + 2 * textScale
      let textHeight = (BitmapFont.glyphHeight + 2) * textScale
      let tagTop = y0 - textHeight >= 0 ? y0 - textHeight : y0
      fillRectangle(x0, tagTop, x0 + textWidth, tagTop + textHeight, color: color)
      let ink = Int(color.red) * 299 + Int(color.green) * 587 + Int(color.blue) * 114 > 140_000 ? RGB(0, 0, 0) : RGB(255, 255, 255)
      drawText(item.caption, x: x0 + textScale, y: tagTop + textScale, scale: textScale, color: ink)
    }
  }

  /// Fills [x0, x1) × [y0, y1), clipped to the image.
  public mutating func fillRectangle(_ x0: Int, _ y0: Int, _ x1: Int, _ y1: Int, color: RGB) {
    let (left, right) = (Swift.max(0, x0), Swift.min(width, x1))
    let (top, bottom) = (Swift.max(0, y0), Swift.min(height, y1))
    guard left < right, top < bottom else { return }
    for y in top..<bottom { for x in left..<right { self[x, y] = color } }
  }

  mutating func strokeRectangle(_ x0: Int, _ y0: Int, _ x1: Int, _ y1: Int, width lineWidth: Int, color: RGB) {
    fillRectangle(x0, y0, x1, y0 + lineWidth, color: color)
    fillRectangle(x0, y1 - lineWidth, x1, y1, color: color)
    fillRectangle(x0, y0, x0 + lineWidth, y1, color: color)
    fillRectangle(x1 - lineWidth, y0, x1, y1, color: color)
  }

  mutating func drawText(_ text: String, x: Int, y: Int, scale: Int, color: RGB) {
    for (index, character) in text.enumerated() {
      let left = x + index * (BitmapFont.glyphWidth + 1) * scale
      for gy in 0..<BitmapFont.glyphHeight {
        for gx in 0..<BitmapFont.glyphWidth where BitmapFont.isSet(character, x: gx, y: gy) {
          fillRectangle(left + gx * scale, y + gy * scale, left + (gx + 1) * scale, y + (gy + 1) * scale, color: color)
        }
      }
    }
  }
}
