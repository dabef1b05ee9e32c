import CTorch

/// One entry of a subscript: `t[0, 1..<3, .all, .newAxis, mask]`.
public enum TensorIndex: Sendable {
  /// Selects one position and removes the dim (negative counts from the end).
  case position(Int)
  /// A strided range; nil bounds mean the start or end of the dim.
  case range(start: Int?, end: Int?, step: Int)
  /// The whole dim (written `.all` in a subscript).
  case wholeDim
  /// As many whole dims as needed to use up the remaining dims (written `.ellipsis`).
  case remainingDims
  /// Inserts a dim of size 1 (written `.newAxis`).
  case newDim
  /// Advanced indexing with an int64 index tensor or a bool mask.
  case tensor(Tensor)
}

/// Values usable inside a tensor subscript.
public protocol TensorIndexConvertible {
  var tensorIndex: TensorIndex { get }
}

extension TensorIndex: TensorIndexConvertible {
  public var tensorIndex: TensorIndex { self }
}
/// Lets `.all`, `.ellipsis`, `.newAxis` and `.stride(by:)` be written inside a subscript.
extension TensorIndexConvertible where Self == TensorIndex {
  public static var all: TensorIndex { .wholeDim }
  public static var ellipsis: TensorIndex { .remainingDims }
  public static var newAxis: TensorIndex { .newDim }
  /// Every `step`-th position from `start` up to `end` (nil bounds: the ends of the dim).
  public static func stride(from start: Int? = nil, to end: Int? = nil, by step: Int) -> TensorIndex {
    .range(start: start, end: end, step: step)
  }
}

extension Int: TensorIndexConvertible { public var tensorIndex: TensorIndex { .position(self) } }
extension Range<Int>: TensorIndexConvertible { public var tensorIndex: TensorIndex { .range(start: lowerBound, end: upperBound, step: 1) } }
extension ClosedRange<Int>: TensorIndexConvertible {
  public var tensorIndex: TensorIndex { .range(start: lowerBound, end: upperBound + 1, step: 1) }
}
extension PartialRangeFrom<Int>: TensorIndexConvertible {
  public var tensorIndex: TensorIndex { .range(start: lowerBound, end: nil, step: 1) }
}
extension PartialRangeUpTo<Int>: TensorIndexConvertible {
  public var tensorIndex: TensorIndex { .range(start: nil, end: upperBound, step: 1) }
}
extension PartialRangeThrough<Int>: TensorIndexConvertible {
  public var tensorIndex: TensorIndex { .range(start: nil, end: upperBound + 1, step: 1) }
}
extension StrideTo<Int>: TensorIndexConvertible {
  public var tensorIndex: TensorIndex {
    let values = Array(self)
    return .range(start: values.first ?? 0, end: values.isEmpty ? 0 : values.last! + 1, step: values.count > 1 ? values[1] - values[0] : 1)
  }
}
extension Tensor: TensorIndexConvertible { public var tensorIndex: TensorIndex { .tensor(self) } }

extension Tensor {
  /// NumPy-style indexing. Positions, ranges, `.all`, `.ellipsis` and `.newAxis` give views;
  /// tensor entries (int64 indices or bool masks) gather a copy, as PyTorch's advanced indexing does.
  /// Setting copies the value (broadcast) into the indexed elements.
  public subscript(_ indices: any TensorIndexConvertible...) -> Tensor {
    get { self[indices.map(\.tensorIndex)] }
    set { assign(newValue, at: indices.map(\.tensorIndex)) }
  }

  public subscript(indices: [TensorIndex]) -> Tensor {
    get {
      let (view, advanced) = basicIndexing(indices)
      guard let advanced else { return view }
      return produce("index", [view] + advanced.compactMap { $0 }) { out in withHandles(advanced) { ctorch_index(view.handle, $0, $1, out) }
      }
    }
    set { assign(newValue, at: indices) }
  }

  /// Gathers rows along `dim` with an int64 index vector.
  public func indexSelect(dim: Int, index: Tensor) -> Tensor {
    produce("index_select", [self, index]) { out in
      withExtendedLifetime(index) { ctorch_index_select(handle, Int64(dim), index.handle, out) }
    }
  }

  /// `out[i][j] = self[index[i][j]][j]` for dim 0, and so on.
  public func gather(dim: Int, index: Tensor) -> Tensor {
    produce("gather", [self, index]) { out in withExtendedLifetime(index) { ctorch_gather(handle, Int64(dim), index.handle, out) } }
  }

  /// A copy with `source` written at `index` along `dim`.
  public func scattering(dim: Int, index: Tensor, source: Tensor) -> Tensor {
    produce("scatter", [self, index, source]) { out in
      withExtendedLifetime((index, source)) { ctorch_scatter(0, handle, Int64(dim), index.handle, source.handle, out) }
    }
  }

  /// A copy with `source` added at `index` along `dim`.
  public func scatteringAdd(dim: Int, index: Tensor, source: Tensor) -> Tensor {
    produce("scatter_add", [self, index, source]) { out in
      withExtendedLifetime((index, source)) { ctorch_scatter(1, handle, Int64(dim), index.handle, source.handle, out) }
    }
  }

  /// A copy with `value` where `mask` holds (broadcast).
  public func filling(where mask: Tensor, with value: some TensorScalarConvertible) -> Tensor {
    produce("masked_fill", [self, mask]) { out in
      withExtendedLifetime(mask) { ctorch_masked_fill(handle, mask.handle, value.tensorScalar.raw, out) }
    }
  }

  /// The elements where `mask` holds, as a 1-D tensor.
  public func selecting(where mask: Tensor) -> Tensor {
    produce("masked_select", [self, mask]) { out in withExtendedLifetime(mask) { ctorch_masked_select(handle, mask.handle, out) } }
  }

  public func slice(dim: Int, start: Int? = nil, end: Int? = nil, step: Int = 1) -> Tensor {
    produce("slice", self) { ctorch_slice(handle, Int64(dim), Int64(start ?? 0), end.map(Int64.init) ?? Int64.max, Int64(step), $0) }
  }

  public func select(dim: Int, index: Int) -> Tensor {
    produce("select", self) { ctorch_select(handle, Int64(dim), Int64(index), $0) }
  }

  /// Applies the basic entries, returning the view and, when tensor entries are present, the
  /// per-dim index list (nil = whole dim) for the view.
  private func basicIndexing(_ indices: [TensorIndex]) -> (Tensor, [Tensor?]?) {
    let consumed = indices.reduce(0) { count, index in
      switch index {
      case .newDim, .remainingDims: count
      case .tensor(let t): count + (t.dtype == .bool ? t.rank : 1)
      default: count + 1
      }
    }
    precondition(consumed <= rank, "Tensor subscript: \(consumed) indices for a tensor of rank \(rank)")
    var result = self
    var dim = 0
    var advanced: [Tensor?] = []
    var hasAdvanced = false
    for index in indices {
      switch index {
      case .position(let position):
        result = result.select(dim: dim, index: position)
      case .range(let start, let end, let step):
        result = result.slice(dim: dim, start: start, end: end, step: step)
        advanced.append(nil)
        dim += 1
      case .wholeDim:
        advanced.append(nil)
        dim += 1
      case .remainingDims:
        let skipped = rank - consumed
        advanced.append(contentsOf: Array(repeating: nil, count: skipped))
        dim += skipped
      case .newDim:
        precondition(!hasAdvanced, "Tensor subscript: .newAxis after a tensor index is not supported")
        result = result.unsqueezed(dim: dim)
        advanced.append(nil)
        dim += 1
      case .tensor(let tensor):
        hasAdvanced = true
        advanced.append(tensor)
        dim += tensor.dtype == .bool ? tensor.rank : 1
      }
    }
    return (result, hasAdvanced ? advanced : nil)
  }

  private func assign(_ value: Tensor, at indices: [TensorIndex]) {
    let (view, advanced) = basicIndexing(indices)
    if let advanced {
      let status = withExtendedLifetime((view, value)) {
        withHandles(advanced) { ctorch_index_put_(view.handle, $0, $1, value.handle, false) }
      }
      check(status, "index_put_", view, value)
    } else {
      view.copy(from: value)
    }
  }
}
