import Detection
import Foundation
import Torch
import TorchNN

/// SD-DETR's task-aware queries (reconstructed): for each selected cell, a predictor per task gives
/// M points inside the cell's box, `centre + tanh(offset) ⊙ (w, h)/2`; the task's features are
/// sampled there (bilinear, padding-aware) and averaged into the query's content; the query's
/// position is the sine embedding of its point (the box centre for localization, the mean of the
/// classification points for classification), projected by an MLP for the self-attention.
/// Keys `cls_offsets`, `cls_position`, and with two branches `loc_offsets`, `loc_position`.
final class TaskAwareQueryMaker: Module {
  let points: Int
  let classOffsets: Linear
  let classPosition: MLP
  let boxOffsets: Linear?
  let boxPosition: MLP?

  /// `branches`: 2 with the localization branch, 1 for a single query kind (classification points, box centre).
  init(dim: Int, points: Int, branches: Int) {
    self.points = points
    classOffsets = Linear(dim, 2 * points)
    classPosition = MLP(inputDim: dim, hiddenDim: dim, outputDim: dim, layerCount: 2)
    boxOffsets = branches == 2 ? Linear(dim, 2 * points) : nil
    boxPosition = branches == 2 ? MLP(inputDim: dim, hiddenDim: dim, outputDim: dim, layerCount: 2) : nil
    super.init()
    registerModule("cls_offsets", classOffsets)
    registerModule("cls_position", classPosition)
    if let boxOffsets, let boxPosition {
      registerModule("loc_offsets", boxOffsets)
      registerModule("loc_position", boxPosition)
    }
    resetOffsets()
  }

  /// Offsets start at zero weight: classification points at the box centre (the salient interior),
  /// localization points at the edge midpoints, then the corners (at 0.9 of the half-size, through atanh).
  func resetOffsets() {
    Initialization.constant(classOffsets.weight, 0)
    Initialization.constant(classOffsets.bias!, 0)
    guard let boxOffsets else { return }
    Initialization.constant(boxOffsets.weight, 0)
    let directions: [(Double, Double)] = [(1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (-1, 1), (1, -1), (-1, -1)]
    var bias: [Float] = []
    for point in 0..<points {
      let (dx, dy) = directions[point % directions.count]
      let reach = 0.9 * Foundation.pow(0.5, Double(point / directions.count))
      bias += [Float(Foundation.atanh(reach * dx)), Float(Foundation.atanh(reach * dy))]
    }
    withNoGrad { boxOffsets.bias!.copy(from: Tensor(bias, shape: [2 * points])) }
  }

  /// The queries of the selected cells.
  /// - `cellFeatures [batch, n, d]`: the memory at the selected cells; `boxes [batch, n, 4]` (cx, cy, w, h),
  ///   the mini-detector's boxes there (detached); `classFeatures`, `boxFeatures [batch, d, h, w]`;
  ///   `validRatios [batch, 2]`.
  func callAsFunction(cellFeatures: Tensor, boxes: Tensor, classFeatures: Tensor, boxFeatures: Tensor, validRatios: Tensor, detach: Bool)
    -> [TaskQuery]
  {
    let center = boxes[.ellipsis, 0..<2]
    func query(offsets: Linear, position: MLP, features: Tensor, positionAtCenter: Bool) -> TaskQuery {
      let (batch, count) = (boxes.size(0), boxes.size(1))
      let reach = offsets(cellFeatures).view(batch, count, points, 2).tanh() * (boxes[.ellipsis, 2..<4] / 2).unsqueezed(dim: 2)
      let locations = center.unsqueezed(dim: 2) + reach
      var content = Self.sampleMean(features, at: locations, validRatios: validRatios)
      if detach { content = content.detached() }
      let point = positionAtCenter ? center : locations.mean(dim: 2)
      let sine = sineEmbedding(ofPoints: point.transposed(0, 1), featuresPerAxis: features.size(1) / 2)
      return TaskQuery(content: content.transposed(0, 1), position: position(sine), sine: sine, points: locations, point: point)
    }
    var queries = [query(offsets: classOffsets, position: classPosition, features: classFeatures, positionAtCenter: boxOffsets == nil)]
    if let boxOffsets, let boxPosition {
      queries.append(query(offsets: boxOffsets, position: boxPosition, features: boxFeatures, positionAtCenter: true))
    }
    return queries
  }

  /// The mean of `features [batch, d, h, w]` sampled bilinearly at `points [batch, n, m, 2]` ((x, y)
  /// normalized to each image's unpadded part; zero outside the map) → `[batch, n, d]`.
  static func sampleMean(_ features: Tensor, at points: Tensor, validRatios: Tensor) -> Tensor {
    let grid = points * validRatios.view(-1, 1, 1, 2) * 2 - 1
    return Functional.gridSample(features, grid: grid, mode: .bilinear, padding: .zeros, alignCorners: false).mean(dim: 3).transposed(1, 2)
  }
}

/// One kind of query for a decoder branch: `content`, `position` (for the self-attention and layer
/// 0's cross-attention) and `sine` (the sine embedding of the query's point, for the spatial query),
/// each `[queries, batch, d]`; the sampled `points [batch, queries, m, 2]` and the query's `point
/// [batch, queries, 2]`, (x, y) normalized.
struct TaskQuery {
  var content: Tensor
  var position: Tensor
  var sine: Tensor
  var points: Tensor?
  var point: Tensor
}
