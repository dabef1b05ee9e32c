import Foundation

extension Image {
  /// Resizes with a bilinear (triangle) filter that widens when shrinking, as PIL's `BILINEAR`
  /// resampling does (antialiased), computed in floating point and rounded to 8 bits.
  public func resized(width newWidth: Int, height newHeight: Int) -> Image {
    precondition(newWidth > 0 && newHeight > 0, "resize to \(newWidth)x\(newHeight)")
    if newWidth == width && newHeight == height { return self }
    let horizontal = ResampleWeights(input: width, output: newWidth)
    let vertical = ResampleWeights(input: height, output: newHeight)
    // Horizontal pass: [height][newWidth][3] as Float.
    var middle = [Float](repeating: 0, count: height * newWidth * 3)
    pixels.withUnsafeBufferPointer { source in
      middle.withUnsafeMutableBufferPointer { target in
        for y in 0..<height {
          let row = y * width * 3
          for x in 0..<newWidth {
            let start = horizontal.starts[x]
            let weights = horizontal.weights[x]
            var r: Float = 0
            var g: Float = 0
            var b: Float = 0
            var p = row + start * 3
            for k in 0..<weights.count {
              let w = weights[k]
              r += w * Float(source[p])
              g += w * Float(source[p + 1])
              b += w * Float(source[p + 2])
              p += 3
            }
            let o = (y * newWidth + x) * 3
            target[o] = r
            target[o + 1] = g
            target[o + 2] = b
          }
        }
      }
    }
    var result = [UInt8](repeating: 0, count: newHeight * newWidth * 3)
    middle.withUnsafeBufferPointer { source in
      result.withUnsafeMutableBufferPointer { target in
        for y in 0..<newHeight {
          let start = vertical.starts[y]
          let weights = vertical.weights[y]
          let stride = newWidth * 3
          for x in 0..<stride {
            var value: Float = 0
            var p = start * stride + x
            for k in 0..<weights.count {
              value += weights[k] * source[p]
              p += stride
            }
            target[y * stride + x] = UInt8(Swift.max(0, Swift.min(255, value.rounded())))
          }
        }
      }
    }
    return Image(width: newWidth, height: newHeight, pixels: result)
  }
}

/// For each output position, the first input position and the normalized filter weights (PIL's scheme).
private struct ResampleWeights {
  var starts: [Int] = []
  var weights: [[Float]] = []

  init(input: Int, output: Int) {
    let scale = Double(input) / Double(output)
    let filterScale = Swift.max(scale, 1)
    let support = filterScale  // the triangle's support of 1, widened when shrinking
    for position in 0..<output {
      let center = (Double(position) + 0.5) * scale
      let low = Swift.max(Int(center - support + 0.5), 0)
      let high = Swift.min(Int(center + support + 0.5), input)
      var row: [Double] = []
      for index in low..<high {
        let distance = Swift.abs((Double(index) - center + 0.5) / filterScale)
        row.append(Swift.max(0, 1 - distance))
      }
      let total = row.reduce(0, +)
      starts.append(low)
      weights.append(row.map { Float(total > 0 ? $0 / total : 0) })
    }
  }
}
