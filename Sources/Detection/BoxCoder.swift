import Foundation
import Torch

/// Box deltas relative to anchors (R-CNN's parameterization, weights 1): `dx = (x − xa)/wa`,
/// `dy = (y − ya)/ha`, `dw = log(w/wa)`, `dh = log(h/ha)` with centres and sizes of corner boxes.
public struct BoxCoder: Sendable, Equatable, Codable {
  /// The largest |dw|, |dh| decoded: log(1000/16).
  public static let scaleClamp = Foundation.log(1000.0 / 16)
  /// Whether `dw, dh` are clamped from below too (mmdet) or only from above (torchvision).
  public var clampsBothSides: Bool

  public init(clampsBothSides: Bool = true) { self.clampsBothSides = clampsBothSides }

  enum CodingKeys: String, CodingKey {
    case clampsBothSides = "clamps_both_sides"
  }

  /// Deltas `[n, 4]` that move corner boxes `anchors [n, 4]` onto `boxes [n, 4]`.
  public func encode(_ boxes: Tensor, anchors: Tensor) -> Tensor {
    let (anchorCentre, anchorSize) = Self.centreAndSize(anchors)
    let (centre, size) = Self.centreAndSize(boxes)
    return Tensor.cat([(centre - anchorCentre) / anchorSize, (size / anchorSize).log()], dim: -1)
  }

  /// Corner boxes `[n, 4]` from `deltas [n, 4]` on `anchors [n, 4]`; clipped to `(height, width)` when given.
  public func decode(_ deltas: Tensor, anchors: Tensor, clipTo size: (height: Int, width: Int)? = nil) -> Tensor {
    let (anchorCentre, anchorSize) = Self.centreAndSize(anchors)
    let scale = deltas[.ellipsis, 2..<4].clamped(min: clampsBothSides ? -Self.scaleClamp : nil, max: Self.scaleClamp)
    let centre = anchorCentre + anchorSize * deltas[.ellipsis, 0..<2]
    let half = anchorSize * scale.exp() * 0.5
    var boxes = Tensor.cat([centre - half, centre + half], dim: -1)
    if let size {
      let limit = Tensor([Float(size.width), Float(size.height), Float(size.width), Float(size.height)], shape: [4])
        .to(dtype: boxes.dtype, device: boxes.device)
      boxes = boxes.maximum(Tensor.zeros([4], dtype: boxes.dtype, device: boxes.device)).minimum(limit)
    }
    return boxes
  }

  /// Centres `[n, 2]` and sizes `[n, 2]` of corner boxes.
  static func centreAndSize(_ boxes: Tensor) -> (Tensor, Tensor) {
    let (topLeft, bottomRight) = (boxes[.ellipsis, 0..<2], boxes[.ellipsis, 2..<4])
    return ((topLeft + bottomRight) * 0.5, bottomRight - topLeft)
  }
}
