import CCairo
import Foundation

/// A 2-D drawing surface over cairo: anti-aliased lines, rectangles and text in DejaVu Sans (found
/// through fontconfig), onto an RGB image, a PNG or an SVG file. Coordinates are pixels, y down.
public final class Canvas {
  public let width: Int
  public let height: Int
  let surface: OpaquePointer
  let context: OpaquePointer

  /// A white canvas; `svg` draws into that file instead of pixels.
  public init(width: Int, height: Int, svg: URL? = nil) {
    self.width = width
    self.height = height
    if let svg {
      surface = cairo_svg_surface_create(svg.path, Double(width), Double(height))
    } else {
      surface = cairo_image_surface_create(CAIRO_FORMAT_RGB24, Int32(width), Int32(height))
    }
    context = cairo_create(surface)
    cairo_select_font_face(context, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL)
    setColor(RGB(255, 255, 255))
    cairo_paint(context)
  }

  /// A canvas holding `image`'s pixels.
  public convenience init(image: Image) {
    self.init(width: image.width, height: image.height)
    cairo_surface_flush(surface)
    let stride = Int(cairo_image_surface_get_stride(surface))
    let data = cairo_image_surface_get_data(surface)!
    image.pixels.withUnsafeBufferPointer { source in
      for y in 0..<height {
        let row = data.advanced(by: y * stride).withMemoryRebound(to: UInt32.self, capacity: width) { $0 }
        for x in 0..<width {
          let index = (y * width + x) * 3
          row[x] = UInt32(source[index]) << 16 | UInt32(source[index + 1]) << 8 | UInt32(source[index + 2])
        }
      }
    }
    cairo_surface_mark_dirty(surface)
  }

  deinit {
    cairo_destroy(context)
    cairo_surface_destroy(surface)
  }

  /// The pixels drawn so far.
  public var image: Image {
    cairo_surface_flush(surface)
    let stride = Int(cairo_image_surface_get_stride(surface))
    let data = cairo_image_surface_get_data(surface)!
    var pixels = [UInt8](repeating: 0, count: width * height * 3)
    for y in 0..<height {
      let row = data.advanced(by: y * stride).withMemoryRebound(to: UInt32.self, capacity: width) { $0 }
      for x in 0..<width {
        let value = row[x]
        let index = (y * width + x) * 3
        (pixels[index], pixels[index + 1], pixels[index + 2]) = (UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF))
      }
    }
    return Image(width: width, height: height, pixels: pixels)
  }

  /// Finishes an SVG canvas's file.
  public func finish() { cairo_surface_finish(surface) }

  public func setColor(_ color: RGB, alpha: Double = 1) {
    cairo_set_source_rgba(context, Double(color.red) / 255, Double(color.green) / 255, Double(color.blue) / 255, alpha)
  }

  public func setLine(width: Double, dash: [Double] = []) {
    cairo_set_line_width(context, width)
    dash.withUnsafeBufferPointer { cairo_set_dash(context, $0.baseAddress, Int32($0.count), 0) }
  }

  public func strokeRectangle(x: Double, y: Double, width: Double, height: Double) {
    cairo_rectangle(context, x, y, width, height)
    cairo_stroke(context)
  }

  public func fillRectangle(x: Double, y: Double, width: Double, height: Double) {
    cairo_rectangle(context, x, y, width, height)
    cairo_fill(context)
  }

  /// A polyline through `points`.
  public func strokeLine(_ points: [(Double, Double)]) {
    guard let first = points.first else { return }
    cairo_move_to(context, first.0, first.1)
    for point in points.dropFirst() { cairo_line_to(context, point.0, point.1) }
    cairo_stroke(context)
  }

  public func fillCircle(x: Double, y: Double, radius: Double) {
    cairo_new_sub_path(context)
    cairo_arc(context, x, y, radius, 0, 2 * Double.pi)
    cairo_fill(context)
  }

  public func setFont(size: Double, bold: Bool = false) {
    cairo_select_font_face(context, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL)
    cairo_set_font_size(context, size)
  }

  /// The advance width of `text` and the font's ascent and descent, in pixels.
  public func measure(_ text: String) -> (width: Double, ascent: Double, descent: Double) {
    var extents = cairo_text_extents_t()
    cairo_text_extents(context, text, &extents)
    var font = cairo_font_extents_t()
    cairo_font_extents(context, &font)
    return (extents.x_advance, font.ascent, font.descent)
  }

  /// Draws `text` with its baseline starting at (x, y); `rotated` turns it a quarter counter-clockwise.
  public func text(_ text: String, x: Double, y: Double, rotated: Bool = false) {
    cairo_save(context)
    cairo_move_to(context, x, y)
    if rotated { cairo_rotate(context, -Double.pi / 2) }
    cairo_show_text(context, text)
    cairo_restore(context)
  }

  /// Writes the pixels as PNG.
  public func writePNG(to url: URL) throws {
    try image.write(to: url)
  }
}
