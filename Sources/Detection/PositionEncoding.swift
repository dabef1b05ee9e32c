import Foundation
import Torch
import TorchNN

/// The 2-D sine position encoding of DETR: for each valid pixel, the cumulative count of valid
/// pixels along y and x, optionally normalized to [0, scale], encoded with sines and cosines of
/// `featuresPerAxis` frequencies. Output channels are [y features, x features].
///
/// Deformable DETR uses `offset` −0.5 (subtracted before normalizing); DETR and Conditional DETR use 0.
public struct SinePositionEncoding: Sendable {
  public var featuresPerAxis: Int
  public var temperature: Double
  public var normalize: Bool
  public var scale: Double
  public var offset: Double

  public init(
    featuresPerAxis: Int = 128, temperature: Double = 10000, normalize: Bool = true, scale: Double = 2 * Double.pi, offset: Double = 0
  ) {
    self.featuresPerAxis = featuresPerAxis
    self.temperature = temperature
    self.normalize = normalize
    self.scale = scale
    self.offset = offset
  }

  /// `paddingMask [batch, h, w]` (true on padding) → `[batch, 2 · featuresPerAxis, h, w]` float32.
  public func callAsFunction(paddingMask: Tensor) -> Tensor {
    let valid = paddingMask.logicalNot().to(.float32)
    var y = valid.cumulativeSum(dim: 1)
    var x = valid.cumulativeSum(dim: 2)
    if normalize {
      let epsilon = 1e-6
      y = (y + offset) / (y[.all, (-1)..., .all] + epsilon) * scale
      x = (x + offset) / (x[.all, .all, (-1)...] + epsilon) * scale
    }
    let k = Tensor.arange(featuresPerAxis, device: valid.device).to(.float32)
    let frequencies = Tensor.pow(temperature, k.floorDivided(by: 2) * 2 / Double(featuresPerAxis))
    func encode(_ positions: Tensor) -> Tensor {
      let angles = positions.unsqueezed(dim: 3) / frequencies
      let sines = angles[.ellipsis, .stride(from: 0, by: 2)].sin()
      let cosines = angles[.ellipsis, .stride(from: 1, by: 2)].cos()
      return Tensor.stack([sines, cosines], dim: 4).flattened(from: 3)
    }
    return Tensor.cat([encode(y), encode(x)], dim: 3).permuted(0, 3, 1, 2)
  }
}

/// DETR's learned position encoding: a row and a column table of 50 entries (keys `row_embed`,
/// `col_embed`), output channels [column (x) features, row (y) features], initialised U[0, 1).
public final class LearnedPositionEncoding: Module {
  public let rowEmbedding: Embedding
  public let columnEmbedding: Embedding

  public init(featuresPerAxis: Int = 128, maximumCells: Int = 50) {
    rowEmbedding = Embedding(maximumCells, featuresPerAxis)
    columnEmbedding = Embedding(maximumCells, featuresPerAxis)
    super.init()
    registerModule("row_embed", rowEmbedding)
    registerModule("col_embed", columnEmbedding)
    Initialization.uniform(rowEmbedding.weight)
    Initialization.uniform(columnEmbedding.weight)
  }

  /// `[batch, 2 · featuresPerAxis, h, w]` for a feature map of `height` × `width` (each at most 50).
  public func callAsFunction(batch: Int, height: Int, width: Int) -> Tensor {
    let features = columnEmbedding.weight.size(1)
    let device = columnEmbedding.weight.device
    let x = columnEmbedding(Tensor.arange(width, device: device))
    let y = rowEmbedding(Tensor.arange(height, device: device))
    let grid = Tensor.cat(
      [x.unsqueezed(dim: 0).expanded(to: [height, width, features]), y.unsqueezed(dim: 1).expanded(to: [height, width, features])], dim: -1)
    return grid.permuted(2, 0, 1).unsqueezed(dim: 0).expanded(to: [batch, 2 * features, height, width])
  }
}
