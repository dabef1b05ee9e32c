import Torch

extension Tensor {
  /// The indices `[batch, count]` of the `count` highest scores of each row of `self` `[batch, N]`,
  /// best first. A row with fewer than `count` entries (a small image's few tokens) gives its whole
  /// ranking repeated, so that every query still has a proposal and the shapes stay as configured.
  public func topIndicesRepeatingRanking(_ count: Int) -> Tensor {
    let available = Swift.min(count, size(1))
    let ranked = topK(available, dim: 1).indices
    guard available < count else { return ranked }
    return ranked.indexSelect(dim: 1, index: Tensor.arange(count, device: ranked.device).remainder(available))
  }
}
