import Foundation
import Torch

/// What a detector is trained on for one image: classes and boxes after the transform.
public struct DetectionTarget: Sendable, Equatable {
  public var imageId: Int
  /// Contiguous class indices.
  public var labels: [Int]
  /// [cx, cy, w, h], normalized by the transformed (unpadded) image's width and height.
  public var boxes: [[Double]]
  /// (height, width) of the stored image, and of the image after the transform.
  public var originalSize: (height: Int, width: Int)
  public var size: (height: Int, width: Int)

  public init(imageId: Int, labels: [Int], boxes: [[Double]], originalSize: (height: Int, width: Int), size: (height: Int, width: Int)) {
    self.imageId = imageId
    self.labels = labels
    self.boxes = boxes
    self.originalSize = originalSize
    self.size = size
  }

  public static func == (a: DetectionTarget, b: DetectionTarget) -> Bool {
    a.imageId == b.imageId && a.labels == b.labels && a.boxes == b.boxes && a.originalSize == b.originalSize && a.size == b.size
  }
}

/// A transformed image: normalized channels `[3, height, width]` (planar, row-major) and its target.
public struct TransformedSample: Sendable {
  public var pixels: [Float]
  public var width: Int
  public var height: Int
  public var target: DetectionTarget

  public init(pixels: [Float], width: Int, height: Int, target: DetectionTarget) {
    precondition(pixels.count == 3 * width * height, "TransformedSample: \(pixels.count) values for 3x\(height)x\(width)")
    self.pixels = pixels
    self.width = width
    self.height = height
    self.target = target
  }
}

/// DETR's data recipe (Carion et al.), box-aware and deterministic for a given random source.
///
/// Training: horizontal flip (p = 0.5); then, with equal chance, either resize the shorter side to
/// one of `scales` (longer side at most `maxSize`), or resize to one of `cropResizeScales`, crop a
/// random region of `cropSizes` and resize to one of `scales`; then normalize with ImageNet's mean
/// and std. Evaluation: shorter side `evaluationSize`, longer at most `maxSize`. Crowd boxes are left out, as DETR does.
/// With `augmentation` `.flip`, training only flips and resizes as evaluation does.
public struct DETRTransform: Sendable {
  /// Training (augmentation, random sizes) or evaluation (one fixed size).
  public enum Mode: Sendable { case training, evaluation }

  /// What training does to an image.
  public enum Augmentation: String, CaseIterable, Sendable {
    /// DETR's recipe: flip, multi-scale resize and random crops.
    case detr
    /// Flip only, at the evaluation size: for data whose objects already vary in scale and position
    /// (the synthetic shapes), where it learns in fewer steps.
    case flip
  }

  /// How evaluation resizes an image (training always resizes as DETR's references).
  public enum Resizing: String, CaseIterable, Sendable, Codable {
    /// DETR's references (torchvision's `Resize` on a PIL image): DETR's size rule (the longer side
    /// truncated), bilinear resampling of the 8-bit pixels, then normalization. What swift-detr trains with.
    case detr
    /// torchvision's detection models (`GeneralizedRCNNTransform`): normalization first, then bilinear
    /// interpolation of the float image (no antialiasing, half-pixel centres) to `⌊side · s⌋` with
    /// `s = min(size / shorter side, maxSize / longer side)`.
    case torchvision
  }

  public var mode: Mode
  public var augmentation = Augmentation.detr
  public var resizing = Resizing.detr
  public var scales: [Int] = Array(stride(from: 480, through: 800, by: 32))
  public var maxSize = 1333
  public var cropResizeScales = [400, 500, 600]
  public var cropSizes = 384...600
  public var evaluationSize = 800
  public var flipProbability = 0.5
  public var mean: [Float] = [0.485, 0.456, 0.406]
  public var standardDeviation: [Float] = [0.229, 0.224, 0.225]

  public init(mode: Mode) {
    self.mode = mode
  }

  /// DETR's recipe with every size scaled by `factor` (for small images such as the synthetic set).
  public static func scaled(_ mode: Mode, by factor: Double, augmentation: Augmentation = .detr) -> DETRTransform {
    var transform = DETRTransform(mode: mode)
    transform.augmentation = augmentation
    func scale(_ value: Int) -> Int { Swift.max(8, Int((Double(value) * factor).rounded())) }
    transform.scales = transform.scales.map(scale)
    transform.maxSize = scale(transform.maxSize)
    transform.cropResizeScales = transform.cropResizeScales.map(scale)
    transform.cropSizes = scale(transform.cropSizes.lowerBound)...scale(transform.cropSizes.upperBound)
    transform.evaluationSize = scale(transform.evaluationSize)
    return transform
  }

  /// The size an image of `width` × `height` has after the evaluation transform (nil in training,
  /// where the size is random).
  public func evaluationOutputSize(width: Int, height: Int) -> (width: Int, height: Int)? {
    guard mode == .evaluation else { return nil }
    return resizing == .torchvision
      ? Self.torchvisionOutputSize(width: width, height: height, shorterSide: evaluationSize, maxSize: maxSize)
      : Self.outputSize(width: width, height: height, shorterSide: evaluationSize, maxSize: maxSize)
  }

  /// Applies the recipe to an image whose objects are `boxes` ([x0, y0, x1, y1] pixels) with `labels`.
  public func apply(
    to image: Image, imageId: Int, boxes: [[Double]], labels: [Int], isCrowd: [Bool], random: inout SeededRandom
  ) -> TransformedSample {
    let kept = boxes.indices.filter { !isCrowd[$0] }
    var state = (image: image, boxes: kept.map { boxes[$0] }, labels: kept.map { labels[$0] })
    switch mode {
    case .evaluation where resizing == .torchvision:
      return torchvisionResized(image, imageId: imageId, boxes: state.boxes, labels: state.labels)
    case .evaluation:
      state = resize(state, shorterSide: evaluationSize, maxSize: maxSize)
    case .training:
      if random.unit() < flipProbability { state = flip(state) }
      if augmentation == .flip {
        state = resize(state, shorterSide: evaluationSize, maxSize: maxSize)
      } else if random.unit() < 0.5 {
        state = resize(state, shorterSide: scales[random.integer(0, scales.count - 1)], maxSize: maxSize)
      } else {
        state = resize(state, shorterSide: cropResizeScales[random.integer(0, cropResizeScales.count - 1)], maxSize: nil)
        state = randomCrop(state, random: &random)
        state = resize(state, shorterSide: scales[random.integer(0, scales.count - 1)], maxSize: maxSize)
      }
    }
    let (w, h) = (Double(state.image.width), Double(state.image.height))
    let normalized = state.boxes.map { b in [(b[0] + b[2]) / 2 / w, (b[1] + b[3]) / 2 / h, (b[2] - b[0]) / w, (b[3] - b[1]) / h] }
    return TransformedSample(
      pixels: normalize(state.image), width: state.image.width, height: state.image.height,
      target: DetectionTarget(
        imageId: imageId, labels: state.labels, boxes: normalized, originalSize: (image.height, image.width),
        size: (state.image.height, state.image.width)))
  }

  typealias State = (image: Image, boxes: [[Double]], labels: [Int])

  /// The output size of torchvision's detection transform for a shorter side of `size` and a longer
  /// side of at most `maxSize`: each side times the scale, rounded down, in float64 as Python does.
  public static func torchvisionOutputSize(width: Int, height: Int, shorterSide size: Int, maxSize: Int) -> (width: Int, height: Int) {
    let scale = Swift.min(Double(size) / Double(Swift.min(width, height)), Double(maxSize) / Double(Swift.max(width, height)))
    return (Int((Double(width) * scale).rounded(.down)), Int((Double(height) * scale).rounded(.down)))
  }

  /// Evaluation as torchvision's detection models preprocess: normalized at the stored size, then
  /// resized as floats by libtorch's bilinear kernel (the one `interpolate` runs there).
  func torchvisionResized(_ image: Image, imageId: Int, boxes: [[Double]], labels: [Int]) -> TransformedSample {
    let (width, height) = Self.torchvisionOutputSize(width: image.width, height: image.height, shorterSide: evaluationSize, maxSize: maxSize)
    var pixels = normalize(image)
    if (width, height) != (image.width, image.height) {
      let planar = Tensor(pixels, shape: [1, 3, image.height, image.width])
      pixels = Functional.interpolate(planar, size: (height, width), mode: .bilinear).contiguous().asArray(Float.self)
    }
    let (w, h) = (Double(image.width), Double(image.height))
    let normalized = boxes.map { b in [(b[0] + b[2]) / 2 / w, (b[1] + b[3]) / 2 / h, (b[2] - b[0]) / w, (b[3] - b[1]) / h] }
    return TransformedSample(
      pixels: pixels, width: width, height: height,
      target: DetectionTarget(
        imageId: imageId, labels: labels, boxes: normalized, originalSize: (image.height, image.width), size: (height, width)))
  }

  func flip(_ state: State) -> State {
    let w = Double(state.image.width)
    return (state.image.flippedHorizontally(), state.boxes.map { [w - $0[2], $0[1], w - $0[0], $0[3]] }, state.labels)
  }

  /// The output size for a shorter side of `size` and a longer side of at most `maxSize` (DETR's rule).
  public static func outputSize(width: Int, height: Int, shorterSide size: Int, maxSize: Int?) -> (width: Int, height: Int) {
    var size = size
    if let maxSize {
      let small = Double(Swift.min(width, height))
      let large = Double(Swift.max(width, height))
      if large / small * Double(size) > Double(maxSize) { size = Int((Double(maxSize) * small / large).rounded(.toNearestOrEven)) }
    }
    if (width <= height && width == size) || (height <= width && height == size) { return (width, height) }
    if width < height { return (size, Int(Double(size) * Double(height) / Double(width))) }
    return (Int(Double(size) * Double(width) / Double(height)), size)
  }

  func resize(_ state: State, shorterSide: Int, maxSize: Int?) -> State {
    let (newWidth, newHeight) = Self.outputSize(
      width: state.image.width, height: state.image.height, shorterSide: shorterSide, maxSize: maxSize)
    let sx = Double(newWidth) / Double(state.image.width)
    let sy = Double(newHeight) / Double(state.image.height)
    return (
      state.image.resized(width: newWidth, height: newHeight), state.boxes.map { [$0[0] * sx, $0[1] * sy, $0[2] * sx, $0[3] * sy] },
      state.labels
    )
  }

  /// DETR's RandomSizeCrop: a region of random width and height in `cropSizes` (bounded by the
  /// image), at a random place; boxes are cut to it and those left empty are dropped.
  func randomCrop(_ state: State, random: inout SeededRandom) -> State {
    let (width, height) = (state.image.width, state.image.height)
    let cropWidth = random.integer(Swift.min(cropSizes.lowerBound, width), Swift.min(width, cropSizes.upperBound))
    let cropHeight = random.integer(Swift.min(cropSizes.lowerBound, height), Swift.min(height, cropSizes.upperBound))
    let top = random.integer(0, height - cropHeight)
    let left = random.integer(0, width - cropWidth)
    var boxes: [[Double]] = []
    var labels: [Int] = []
    for (box, label) in zip(state.boxes, state.labels) {
      let cut = [
        Swift.max(0, box[0] - Double(left)), Swift.max(0, box[1] - Double(top)), Swift.min(Double(cropWidth), box[2] - Double(left)),
        Swift.min(Double(cropHeight), box[3] - Double(top)),
      ]
      if cut[2] > cut[0] && cut[3] > cut[1] {
        boxes.append(cut)
        labels.append(label)
      }
    }
    return (state.image.cropped(x: left, y: top, width: cropWidth, height: cropHeight), boxes, labels)
  }

  /// Planar `[3, h, w]` floats: (value / 255 - mean) / std per channel.
  public func normalize(_ image: Image) -> [Float] {
    let count = image.width * image.height
    var result = [Float](repeating: 0, count: 3 * count)
    let scale = (0..<3).map { 1 / (255 * standardDeviation[$0]) }
    let shift = (0..<3).map { -mean[$0] / standardDeviation[$0] }
    image.pixels.withUnsafeBufferPointer { source in
      result.withUnsafeMutableBufferPointer { target in
        for index in 0..<count {
          for channel in 0..<3 {
            target[channel * count + index] = Float(source[3 * index + channel]) * scale[channel] + shift[channel]
          }
        }
      }
    }
    return result
  }
}
