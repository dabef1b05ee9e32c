import Foundation
import Torch

/// The anchors of a dense detector (RetinaNet, Lin et al. 2017): at each level, `scales.count ×
/// ratios.count` boxes per location, ratio-major (`a = ratio · scales + scale`, torchvision's and
/// mmdet's order) or size-major (`a = scale · ratios + ratio`, detectron2's), laid out position-major
/// (row by row, then the anchors of a location), the order in which a head's `[A·K, H, W]` output is
/// flattened after `permute(1, 2, 0)`. A head's weights follow the order it was trained with.
public struct AnchorGenerator: Sendable, Equatable, Codable {
  /// Where the two libraries RetinaNet comes from differ.
  public enum Convention: String, Sendable, Equatable, Codable, CaseIterable {
    /// mmdetection 2.x: float sizes, strides as configured, anchors in padding excluded from training.
    case mmdet
    /// torchvision: sizes truncated to integers, base anchors rounded, each level's stride the padded
    /// image size divided (integer division) by the level's size.
    case torchvision
  }

  /// The order of a location's anchors.
  public enum Order: String, Sendable, Equatable, Codable, CaseIterable {
    /// All scales of the first ratio, then of the next (torchvision, mmdet).
    case ratioMajor = "ratio-major"
    /// All ratios of the first scale, then of the next (detectron2).
    case sizeMajor = "size-major"
  }

  public var convention: Convention
  public var order = Order.ratioMajor
  /// Each level's stride in pixels (P3–P7: 8 … 128).
  public var strides: [Int]
  /// Each level's anchor side at scale 1 (4 × stride: 32 … 512). In mmdet's convention the side is
  /// `octave_base_scale × stride`, so `sizes[l] / strides[l]` is the octave base scale (4 by default).
  public var sizes: [Double]
  /// Octave scales of the side (2^0, 2^(1/3), 2^(2/3)).
  public var scales: [Double]
  /// Aspect ratios as height / width.
  public var ratios: [Double]

  public init(convention: Convention, strides: [Int] = [8, 16, 32, 64, 128], scales: [Double]? = nil, ratios: [Double] = [0.5, 1, 2]) {
    self.convention = convention
    self.strides = strides
    sizes = strides.map { 4 * Double($0) }
    self.scales = scales ?? (0..<3).map { Foundation.pow(2, Double($0) / 3) }
    self.ratios = ratios
  }

  public var anchorsPerLocation: Int { scales.count * ratios.count }

  public init(from decoder: Decoder) throws {
    let container = try decoder.container(keyedBy: CodingKeys.self)
    convention = try container.decode(Convention.self, forKey: .convention)
    order = try container.decodeIfPresent(Order.self, forKey: .order) ?? .ratioMajor
    strides = try container.decode([Int].self, forKey: .strides)
    sizes = try container.decode([Double].self, forKey: .sizes)
    scales = try container.decode([Double].self, forKey: .scales)
    ratios = try container.decode([Double].self, forKey: .ratios)
  }

  enum CodingKeys: String, CodingKey {
    case convention, order, strides, sizes, scales, ratios
  }

  /// A level's anchors around (0, 0) as (x0, y0, x1, y1), in the libraries' float32 arithmetic.
  public func baseAnchors(level: Int) -> [[Float]] {
    var anchors: [[Float]] = []
    let pairs =
      switch order {
      case .ratioMajor: ratios.flatMap { ratio in scales.map { (ratio, $0) } }
      case .sizeMajor: scales.flatMap { scale in ratios.map { ($0, scale) } }
      }
    for (ratio, scale) in pairs {
      let heightRatio = Float(ratio).squareRoot()
      let widthRatio = 1 / heightRatio
      switch convention {
      case .mmdet:
        // ws = stride · w_ratio · (octave base scale · 2^(i/3)), as mmdet multiplies its float32 tensors;
        // the octave base scale is the level's size over its stride (mmdet's `octave_base_scale`, 4),
        // multiplied into the octave scales in float64 before they become float32, as mmdet does.
        let octave = Float(sizes[level] / Double(strides[level]) * scale)
        let (w, h) = (Float(strides[level]) * widthRatio * octave, Float(strides[level]) * heightRatio * octave)
        anchors.append([-0.5 * w, -0.5 * h, 0.5 * w, 0.5 * h])
      case .torchvision:
        let side = Float((sizes[level] * scale).rounded(.towardZero))
        let (w, h) = (widthRatio * side, heightRatio * side)
        anchors.append([-w / 2, -h / 2, w / 2, h / 2].map { $0.rounded(.toNearestOrEven) })
      }
    }
    return anchors
  }

  /// The stride (y, x) of a level of size `featureSize` in a batch padded to `paddedSize`.
  public func stride(level: Int, featureSize: (height: Int, width: Int), paddedSize: (height: Int, width: Int)) -> (y: Int, x: Int) {
    switch convention {
    case .mmdet: (strides[level], strides[level])
    case .torchvision: (paddedSize.height / featureSize.height, paddedSize.width / featureSize.width)
    }
  }

  /// A level's anchors `[h·w·A, 4]` (x0, y0, x1, y1) in pixels: the base anchors shifted to each cell's
  /// corner `(x · stride, y · stride)` (offset 0, as all three reference libraries).
  public func anchors(
    level: Int, featureSize: (height: Int, width: Int), paddedSize: (height: Int, width: Int), device: Device = .cpu
  ) -> Tensor {
    let base = Tensor(baseAnchors(level: level).flatMap { $0 }, shape: [anchorsPerLocation, 4]).to(device: device)
    let stride = stride(level: level, featureSize: featureSize, paddedSize: paddedSize)
    let xs = (Tensor.arange(featureSize.width, device: device) * stride.x).to(.float32)
    let ys = (Tensor.arange(featureSize.height, device: device) * stride.y).to(.float32)
    let shiftX = xs.view(1, -1).expanded(to: [featureSize.height, featureSize.width]).reshaped(-1)
    let shiftY = ys.view(-1, 1).expanded(to: [featureSize.height, featureSize.width]).reshaped(-1)
    let shifts = Tensor.stack([shiftX, shiftY, shiftX, shiftY], dim: 1)
    return (shifts.view(-1, 1, 4) + base.view(1, -1, 4)).reshaped(-1, 4)
  }

  /// Which anchors `[h·w·A]` of a level lie on cells of the image rather than the batch's padding
  /// (mmdet's valid flags: the image's size rounded up to a multiple of 32, in cells); all with torchvision.
  public func validFlags(
    level: Int, featureSize: (height: Int, width: Int), imageSize: (height: Int, width: Int), device: Device = .cpu
  ) -> Tensor {
    guard convention == .mmdet else {
      return Tensor.ones([featureSize.height * featureSize.width * anchorsPerLocation], dtype: .bool, device: device)
    }
    func padded(_ side: Int) -> Int { (side + 31) / 32 * 32 }
    let stride = strides[level]
    let validHeight = Swift.min((padded(imageSize.height) + stride - 1) / stride, featureSize.height)
    let validWidth = Swift.min((padded(imageSize.width) + stride - 1) / stride, featureSize.width)
    let rows = (Tensor.arange(featureSize.height, device: device) .< validHeight).view(-1, 1)
    let columns = (Tensor.arange(featureSize.width, device: device) .< validWidth).view(1, -1)
    return (rows .& columns).reshaped(-1, 1).expanded(to: [featureSize.height * featureSize.width, anchorsPerLocation])
      .reshaped(-1)
  }
}
