import Detection
import Torch

/// A group of the cross-attention's keys with a spatial prior of its own: the cells of one feature map
/// (and, in the multi-scale model, a softmax of its own).
struct KeySegment {
  var size: (height: Int, width: Int)
  /// Pixels per cell: a centre (normalized to the image) is placed in cells of this size.
  var stride: Int
  /// Multiplies the prior's distance: the official multi-scale factors (0.5, 0.5, 1, 2); 1 with one map.
  var distanceFactor: Double

  var tokenCount: Int { size.height * size.width }
}

/// SMCA's Gaussian-like spatial prior: for each image, head and query, log G over the cells of a
/// feature map, added to the cross-attention logits before the softmax.
///
/// The prior of a head with centre p = (px, py) (in cells of the map) at cell (x, y) is
/// `log G = −dist / β`, with `dist` from the squared differences dx² = (px − x)², dy² = (py − y)² as
/// `SpatialScale` says; cell coordinates are the integer indices (no half-cell offset), as in the
/// official code. The squared differences are separable, so the map is built from `[.., W]` and
/// `[.., H]` factors broadcast against each other instead of a `[queries, H·W, batch·heads, 2]` grid.
enum SpatialPrior {
  /// - `points [queries, batch, heads, 2]`: each head's centre (x, y) in cells.
  /// - `scales [queries, batch, heads · scalesPerHead]` (head-major, as the official projection),
  ///   nil for `.fixed`.
  /// - `size`: the feature map's (height, width); `factor` multiplies the distance.
  /// - Returns `[batch · heads, queries, height · width]` (row b·heads + h), row-major cells.
  static func logWeights(
    points: Tensor, scales: Tensor?, scale: SpatialScale, smoothing: Double, size: (height: Int, width: Int), factor: Double = 1
  ) -> Tensor {
    let (queries, batch, heads) = (points.size(0), points.size(1), points.size(2))
    // [batch, heads, queries, 2]: the output's leading order, so the broadcast result is contiguous.
    let centres = points.permuted(1, 2, 0, 3)
    let columns = Tensor.arange(0, size.width, dtype: .float32, device: points.device).view(1, 1, 1, size.width)
    let rows = Tensor.arange(0, size.height, dtype: .float32, device: points.device).view(1, 1, 1, size.height)
    let squaredX = (centres[.ellipsis, 0..<1] - columns).square()  // [batch, heads, queries, W]
    let squaredY = (centres[.ellipsis, 1..<2] - rows).square()  // [batch, heads, queries, H]
    // The factors that multiply dx² and dy² (and dx²·dy²), with −1/β folded in: [batch, heads, queries, 1].
    let negative = -factor / smoothing
    let factors: (x: Tensor?, y: Tensor?, product: Tensor?)
    if scale == .fixed {
      factors = (nil, nil, nil)
    } else {
      guard let scales else { preconditionFailure("SMCA \(scale.rawValue) needs the scale projection") }
      // [queries, batch, heads · k] -> [batch, heads, queries, k]
      let perHead = (scales.square() * negative).view(queries, batch, heads, scale.scalesPerHead).permuted(1, 2, 0, 3)
      switch scale {
      case .fixed: factors = (nil, nil, nil)
      case .perHead: factors = (perHead, perHead, nil)
      case .perAxis: factors = (perHead[.ellipsis, 0..<1], perHead[.ellipsis, 1..<2], nil)
      case .perAxisWithProduct: factors = (perHead[.ellipsis, 0..<1], perHead[.ellipsis, 1..<2], perHead[.ellipsis, 2..<3])
      }
    }
    let x = factors.x.map { squaredX * $0 } ?? squaredX * negative
    let y = factors.y.map { squaredY * $0 } ?? squaredY * negative
    var weights = y.unsqueezed(dim: 4) + x.unsqueezed(dim: 3)  // [batch, heads, queries, H, W]
    if let product = factors.product {
      weights = weights + (squaredY * product).unsqueezed(dim: 4) * squaredX.unsqueezed(dim: 3)
    }
    return weights.view(batch * heads, queries, size.height * size.width)
  }
}

extension DetectorBatch {
  /// Each image's unpadded (width, height) in pixels, `[1, batch, 2]`: what scales a normalized centre.
  var pixelSizes: Tensor {
    Tensor(imageSizes.flatMap { [Float($0.width), Float($0.height)] }, shape: [1, count, 2]).to(device: images.device)
  }
}
