extension Image {
  /// A straight line of `width` pixels between two points (clipped to the image).
  public mutating func drawLine(from start: (x: Double, y: Double), to end: (x: Double, y: Double), color: RGB, width: Int = 2) {
    let steps = Int(Swift.max(Swift.abs(end.x - start.x), Swift.abs(end.y - start.y)).rounded(.up)) + 1
    for step in 0...steps {
      let t = Double(step) / Double(steps)
      let x = Int((start.x + (end.x - start.x) * t).rounded())
      let y = Int((start.y + (end.y - start.y) * t).rounded())
      fillRectangle(x - width / 2, y - width / 2, x - width / 2 + width, y - width / 2 + width, color: color)
    }
  }

  /// Text in the built-in 5×7 font, `scale` pixels per font pixel, top-left at (x, y).
  public mutating func write(_ text: String, x: Int, y: Int, scale: Int = 2, color: RGB = RGB(0, 0, 0)) {
    drawText(text, x: x, y: y, scale: scale, color: color)
  }
}
