import CTorch

/// Reductions. `dims` empty means all dims; negative dims count from the end.
extension Tensor {
  func reduce(_ op: Int32, _ dims: [Int], _ keepDims: Bool, _ name: StaticString) -> Tensor {
    produce(name, self) { out in withInt64s(dims) { ctorch_reduce(op, handle, $0, $1, keepDims, out) } }
  }

  public func sum(dims: [Int] = [], keepDims: Bool = false) -> Tensor { reduce(Int32(CTORCH_SUM), dims, keepDims, "sum") }
  public func sum(dim: Int, keepDims: Bool = false) -> Tensor { sum(dims: [dim], keepDims: keepDims) }
  public func mean(dims: [Int] = [], keepDims: Bool = false) -> Tensor { reduce(Int32(CTORCH_MEAN), dims, keepDims, "mean") }
  public func mean(dim: Int, keepDims: Bool = false) -> Tensor { mean(dims: [dim], keepDims: keepDims) }
  public func product(dims: [Int] = [], keepDims: Bool = false) -> Tensor { reduce(Int32(CTORCH_PROD), dims, keepDims, "prod") }
  /// The largest values over dims (no indices; see `max(dim:)`).
  public func max(dims: [Int] = [], keepDims: Bool = false) -> Tensor { reduce(Int32(CTORCH_AMAX), dims, keepDims, "amax") }
  public func min(dims: [Int] = [], keepDims: Bool = false) -> Tensor { reduce(Int32(CTORCH_AMIN), dims, keepDims, "amin") }
  public func all(dims: [Int] = [], keepDims: Bool = false) -> Tensor { reduce(Int32(CTORCH_ALL), dims, keepDims, "all") }
  public func any(dims: [Int] = [], keepDims: Bool = false) -> Tensor { reduce(Int32(CTORCH_ANY), dims, keepDims, "any") }
  public func logSumExp(dims: [Int] = [], keepDims: Bool = false) -> Tensor { reduce(Int32(CTORCH_LOGSUMEXP), dims, keepDims, "logsumexp") }
  /// Variance; `unbiased` divides by n - 1 (PyTorch's default) instead of n.
  public func variance(dims: [Int] = [], unbiased: Bool = true, keepDims: Bool = false) -> Tensor {
    reduce(Int32(unbiased ? CTORCH_VAR_UNBIASED : CTORCH_VAR), dims, keepDims, "var")
  }
  public func standardDeviation(dims: [Int] = [], unbiased: Bool = true, keepDims: Bool = false) -> Tensor {
    reduce(Int32(unbiased ? CTORCH_STD_UNBIASED : CTORCH_STD), dims, keepDims, "std")
  }

  /// The p-norm over dims (all elements by default).
  public func norm(_ p: Double = 2, dims: [Int] = [], keepDims: Bool = false) -> Tensor {
    produce("norm", self) { out in withInt64s(dims) { ctorch_norm(handle, p, $0, $1, keepDims, out) } }
  }

  /// The largest values along `dim` and their indices.
  public func max(dim: Int, keepDims: Bool = false) -> (values: Tensor, indices: Tensor) {
    let (values, indices) = producePair("max", self) { ctorch_extreme_dim(0, handle, Int64(dim), keepDims, $0, $1) }
    return (values, indices)
  }

  public func min(dim: Int, keepDims: Bool = false) -> (values: Tensor, indices: Tensor) {
    let (values, indices) = producePair("min", self) { ctorch_extreme_dim(1, handle, Int64(dim), keepDims, $0, $1) }
    return (values, indices)
  }

  /// Index of the largest value along `dim`, or in the flattened tensor when `dim` is nil.
  public func argmax(dim: Int? = nil, keepDims: Bool = false) -> Tensor {
    produce("argmax", self) { ctorch_arg_extreme(0, handle, dim != nil, Int64(dim ?? 0), keepDims, $0) }
  }

  public func argmin(dim: Int? = nil, keepDims: Bool = false) -> Tensor {
    produce("argmin", self) { ctorch_arg_extreme(1, handle, dim != nil, Int64(dim ?? 0), keepDims, $0) }
  }

  public func softmax(dim: Int) -> Tensor { produce("softmax", self) { ctorch_along_dim(0, handle, Int64(dim), $0) } }
  public func logSoftmax(dim: Int) -> Tensor { produce("logSoftmax", self) { ctorch_along_dim(1, handle, Int64(dim), $0) } }
  public func cumulativeSum(dim: Int) -> Tensor { produce("cumsum", self) { ctorch_along_dim(2, handle, Int64(dim), $0) } }
  public func cumulativeProduct(dim: Int) -> Tensor { produce("cumprod", self) { ctorch_along_dim(3, handle, Int64(dim), $0) } }

  /// The k largest (or smallest) values along `dim` and their indices.
  public func topK(_ k: Int, dim: Int = -1, largest: Bool = true, sorted: Bool = true) -> (values: Tensor, indices: Tensor) {
    let (values, indices) = producePair("topk", self) { ctorch_topk(handle, Int64(k), Int64(dim), largest, sorted, $0, $1) }
    return (values, indices)
  }

  /// Sorted values along `dim` and the indices that sort it; `stable` keeps ties in order.
  public func sorted(dim: Int = -1, descending: Bool = false, stable: Bool = false) -> (values: Tensor, indices: Tensor) {
    let (values, indices) = producePair("sort", self) { ctorch_sort(handle, Int64(dim), descending, stable, $0, $1) }
    return (values, indices)
  }

  public func argsort(dim: Int = -1, descending: Bool = false, stable: Bool = false) -> Tensor {
    sorted(dim: dim, descending: descending, stable: stable).indices
  }

  /// The sorted distinct values of the flattened tensor, the index of each element in them, and their counts.
  public func unique() -> (values: Tensor, inverse: Tensor, counts: Tensor) {
    var values: ctorch_tensor?
    var inverse: ctorch_tensor?
    var counts: ctorch_tensor?
    guard ctorch_unique(handle, &values, &inverse, &counts) == CTORCH_OK, let values, let inverse, let counts else {
      opFailed("unique", [self])
    }
    return (Tensor(handle: values), Tensor(handle: inverse), Tensor(handle: counts))
  }

  /// Indices of the non-zero elements, `[count, rank]` int64.
  public func nonzero() -> Tensor { produce("nonzero", self) { ctorch_nonzero(handle, $0) } }
}
