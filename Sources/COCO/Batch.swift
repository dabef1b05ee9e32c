import Torch

/// Images padded to a common size, with a mask of the padding, and their targets.
public struct DetectionBatch: @unchecked Sendable {
  /// `[batch, 3, height, width]` float32, normalized; zero in the padding.
  public var images: Tensor
  /// `[batch, height, width]` bool, true on padding (DETR's convention).
  public var paddingMask: Tensor
  public var targets: [DetectionTarget]

  /// Pads samples to the largest height and width in the batch, rounded up to `multiple` when given.
  public init(samples: [TransformedSample], padToMultipleOf multiple: Int? = nil) {
    precondition(!samples.isEmpty, "a batch needs at least one sample")
    func roundUp(_ value: Int) -> Int { multiple.map { (value + $0 - 1) / $0 * $0 } ?? value }
    let height = roundUp(samples.map(\.height).max()!)
    let width = roundUp(samples.map(\.width).max()!)
    var pixels = [Float](repeating: 0, count: samples.count * 3 * height * width)
    var mask = [Bool](repeating: true, count: samples.count * height * width)
    for (b, sample) in samples.enumerated() {
      for channel in 0..<3 {
        for y in 0..<sample.height {
          let source = (channel * sample.height + y) * sample.width
          let target = ((b * 3 + channel) * height + y) * width
          pixels.replaceSubrange(target..<(target + sample.width), with: sample.pixels[source..<(source + sample.width)])
        }
      }
      for y in 0..<sample.height {
        let start = (b * height + y) * width
        mask.replaceSubrange(start..<(start + sample.width), with: repeatElement(false, count: sample.width))
      }
    }
    images = Tensor(pixels, shape: [samples.count, 3, height, width])
    paddingMask = Tensor(mask, shape: [samples.count, height, width])
    targets = samples.map(\.target)
  }
}
