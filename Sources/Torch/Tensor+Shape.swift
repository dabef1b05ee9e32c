import CTorch

/// Shape changes and joins. Views share storage with `self`.
extension Tensor {
  func reshapeOp(_ op: Int32, _ values: [Int], _ name: StaticString) -> Tensor {
    produce(name, self) { out in withInt64s(values) { ctorch_reshape(op, handle, $0, $1, out) } }
  }

  /// A view with a new shape (one size may be -1); the tensor must be viewable so.
  public func view(_ shape: [Int]) -> Tensor { reshapeOp(Int32(CTORCH_VIEW), shape, "view") }
  public func view(_ shape: Int...) -> Tensor { view(shape) }
  /// A view when possible, else a copy.
  public func reshaped(_ shape: [Int]) -> Tensor { reshapeOp(Int32(CTORCH_RESHAPE), shape, "reshape") }
  public func reshaped(_ shape: Int...) -> Tensor { reshaped(shape) }
  public func permuted(_ dims: [Int]) -> Tensor { reshapeOp(Int32(CTORCH_PERMUTE), dims, "permute") }
  public func permuted(_ dims: Int...) -> Tensor { permuted(dims) }
  /// Broadcasts size-1 dims to `shape` (-1 keeps a size) without copying.
  public func expanded(to shape: [Int]) -> Tensor { reshapeOp(Int32(CTORCH_EXPAND), shape, "expand") }
  /// Tiles the tensor `counts[i]` times along dim i.
  public func repeated(_ counts: [Int]) -> Tensor { reshapeOp(Int32(CTORCH_REPEAT), counts, "repeat") }
  public func flipped(dims: [Int]) -> Tensor { reshapeOp(Int32(CTORCH_FLIP), dims, "flip") }

  public func transposed(_ dim0: Int, _ dim1: Int) -> Tensor {
    produce("transpose", self) { ctorch_transpose(handle, Int64(dim0), Int64(dim1), $0) }
  }

  /// Swaps the last two dims.
  public var mT: Tensor { transposed(-2, -1) }

  public func flattened(from startDim: Int = 0, to endDim: Int = -1) -> Tensor {
    produce("flatten", self) { ctorch_flatten(handle, Int64(startDim), Int64(endDim), $0) }
  }

  /// Removes `dim` if its size is 1, or every size-1 dim when `dim` is nil.
  public func squeezed(dim: Int? = nil) -> Tensor {
    produce("squeeze", self) { ctorch_squeeze(handle, dim != nil, Int64(dim ?? 0), $0) }
  }

  public func unsqueezed(dim: Int) -> Tensor {
    produce("unsqueeze", self) { ctorch_unsqueeze(handle, Int64(dim), $0) }
  }

  /// Concatenates along an existing dim.
  public static func cat(_ tensors: [Tensor], dim: Int = 0) -> Tensor { join(0, tensors, dim, "cat") }
  /// Stacks along a new dim.
  public static func stack(_ tensors: [Tensor], dim: Int = 0) -> Tensor { join(1, tensors, dim, "stack") }

  private static func join(_ op: Int32, _ tensors: [Tensor], _ dim: Int, _ name: StaticString) -> Tensor {
    produce(name, tensors) { out in withHandles(tensors) { ctorch_join(op, $0, $1, Int64(dim), out) } }
  }

  /// Pieces of `size` along `dim` (the last may be smaller).
  public func split(size: Int, dim: Int = 0) -> [Tensor] {
    produceList("split", self) { ctorch_split(handle, Int64(size), Int64(dim), $0, $1) }
  }

  /// Pieces with the given sizes along `dim`.
  public func split(sizes: [Int], dim: Int = 0) -> [Tensor] {
    produceList("splitWithSizes", self) { sink, context in
      withInt64s(sizes) { ctorch_split_sizes(handle, $0, $1, Int64(dim), sink, context) }
    }
  }

  /// At most `count` nearly equal pieces along `dim`.
  /// This 1-D tensor cut into consecutive pieces viewed in `shapes` (the inverse of concatenating
  /// flattened tensors of those shapes); the pieces share its storage.
  public func unflattened(into shapes: [[Int]]) -> [Tensor] {
    let counts = shapes.map { $0.reduce(1, *) }
    return zip(split(sizes: counts), shapes).map { $0.view($1) }
  }

  public func chunked(_ count: Int, dim: Int = 0) -> [Tensor] {
    produceList("chunk", self) { ctorch_chunk(handle, Int64(count), Int64(dim), $0, $1) }
  }

  /// Pads with a constant: `padding` holds (before, after) pairs starting from the last dim.
  public func padded(_ padding: [Int], value: Double = 0) -> Tensor {
    produce("pad", self) { out in withInt64s(padding) { ctorch_constant_pad(handle, $0, $1, value, out) } }
  }

  /// The lower triangle (elements below or on `diagonal`), zero elsewhere.
  public func lowerTriangle(diagonal: Int = 0) -> Tensor { produce("tril", self) { ctorch_triangle(0, handle, Int64(diagonal), $0) } }
  public func upperTriangle(diagonal: Int = 0) -> Tensor { produce("triu", self) { ctorch_triangle(1, handle, Int64(diagonal), $0) } }
}
