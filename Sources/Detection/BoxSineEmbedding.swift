import Foundation
import Torch

/// The sine embedding of points or boxes given in [0, 1] (DAB-DETR's and DINO's query positions,
/// Deformable DETR's two-stage proposal embedding): each coordinate c becomes
/// [sin(2πc/T^(0/F)), cos(2πc/T^(0/F)), sin(2πc/T^(2/F)), ...] with F `featuresPerCoordinate`
/// frequencies, and the coordinates' embeddings are concatenated.
///
/// `boxes [..., n]` → `[..., n · featuresPerCoordinate]`, coordinates in input order, except that
/// `swapXY` puts y's embedding before x's (detrex's `get_sine_pos_embed`, whose default it is).
public func boxSineEmbedding(_ boxes: Tensor, featuresPerCoordinate: Int, temperature: Double = 10000, swapXY: Bool) -> Tensor {
  let k = Tensor.arange(featuresPerCoordinate, device: boxes.device).to(.float32)
  let frequencies = Tensor.pow(temperature, k.floorDivided(by: 2) * 2 / Double(featuresPerCoordinate))
  let angles = (boxes * (2 * Double.pi)).unsqueezed(dim: -1) / frequencies
  let rank = angles.rank
  var embedded = Tensor.stack(
    [angles[.ellipsis, .stride(from: 0, by: 2)].sin(), angles[.ellipsis, .stride(from: 1, by: 2)].cos()], dim: rank
  ).flattened(from: rank - 1)
  if swapXY {
    let coordinates = embedded.size(-2)
    // Slices, not an index tensor: nothing is copied from host memory (on a GPU that would wait for its queue).
    let axis = rank - 2
    embedded = Tensor.cat(
      [embedded.slice(dim: axis, start: 1, end: 2), embedded.slice(dim: axis, start: 0, end: 1)]
        + (coordinates > 2 ? [embedded.slice(dim: axis, start: 2)] : []), dim: axis)
  }
  return embedded.flattened(from: rank - 2)
}
