/// Pixel-exact geometric operations on images.
extension Image {
  /// The image as it should be displayed, given its EXIF orientation tag (1-8).
  public func oriented(exifOrientation orientation: Int) -> Image {
    switch orientation {
    case 2: return flippedHorizontally()
    case 3: return rotated180()
    case 4: return flippedVertically()
    case 5: return transposed()
    case 6: return transposed().flippedHorizontally()
    case 7: return transposed().rotated180()
    case 8: return transposed().flippedVertically()
    default: return self
    }
  }

  public func flippedHorizontally() -> Image {
    remapped(width: width, height: height) { x, y in (width - 1 - x, y) }
  }

  public func flippedVertically() -> Image {
    remapped(width: width, height: height) { x, y in (x, height - 1 - y) }
  }

  public func rotated180() -> Image {
    remapped(width: width, height: height) { x, y in (width - 1 - x, height - 1 - y) }
  }

  /// Swaps rows and columns (the main-diagonal mirror).
  public func transposed() -> Image {
    remapped(width: height, height: width) { x, y in (y, x) }
  }

  /// The region [x, x + width) × [y, y + height), which must lie inside the image.
  public func cropped(x: Int, y: Int, width cropWidth: Int, height cropHeight: Int) -> Image {
    precondition(x >= 0 && y >= 0 && x + cropWidth <= width && y + cropHeight <= height, "crop outside the image")
    return remapped(width: cropWidth, height: cropHeight) { cx, cy in (cx + x, cy + y) }
  }

  /// A new image whose pixel (x, y) is this image's pixel at `source(x, y)`.
  private func remapped(width newWidth: Int, height newHeight: Int, source: (Int, Int) -> (Int, Int)) -> Image {
    var result = [UInt8](repeating: 0, count: newWidth * newHeight * 3)
    pixels.withUnsafeBufferPointer { input in
      for y in 0..<newHeight {
        for x in 0..<newWidth {
          let (sx, sy) = source(x, y)
          let from = 3 * (sy * width + sx)
          let to = 3 * (y * newWidth + x)
          result[to] = input[from]
          result[to + 1] = input[from + 1]
          result[to + 2] = input[from + 2]
        }
      }
    }
    return Image(width: newWidth, height: newHeight, pixels: result)
  }
}
