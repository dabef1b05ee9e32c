import CTorch

/// An n-dimensional array in libtorch, with autograd.
///
/// A `Tensor` owns one libtorch handle and releases it when the last Swift reference goes away, so
/// memory is returned deterministically. Several `Tensor`s may share storage (views); in-place
/// methods end in `InPlace` or are named as mutations (`copy(from:)`, `fill(with:)`).
///
/// Ops do not throw: a libtorch error inside an op is a programming error and stops the program with
/// the op's name, the input shapes and libtorch's message. Tensors may be passed between threads;
/// mutating one from two threads at once is a data race, as in PyTorch.
public final class Tensor: @unchecked Sendable {
  let handle: ctorch_tensor

  init(handle: ctorch_tensor) {
    Torch.ensureCompatibleShim()
    self.handle = handle
  }

  deinit {
    ctorch_tensor_free(handle)
  }

  /// The sizes of the dimensions.
  public var shape: [Int] {
    let rank = Int(ctorch_tensor_dim(handle))
    return [Int](unsafeUninitializedCapacity: rank) { buffer, count in
      buffer.withMemoryRebound(to: Int64.self) { _ = ctorch_tensor_sizes(handle, $0.baseAddress, Int64(rank)) }
      count = rank
    }
  }

  /// The strides of the dimensions, in elements.
  public var strides: [Int] {
    let rank = Int(ctorch_tensor_dim(handle))
    return [Int](unsafeUninitializedCapacity: rank) { buffer, count in
      buffer.withMemoryRebound(to: Int64.self) { _ = ctorch_tensor_strides(handle, $0.baseAddress, Int64(rank)) }
      count = rank
    }
  }

  /// The size of one dimension; negative dims count from the end.
  public func size(_ dim: Int) -> Int {
    let shape = self.shape
    return shape[dim < 0 ? dim + shape.count : dim]
  }

  public var rank: Int { Int(ctorch_tensor_dim(handle)) }
  public var elementCount: Int { Int(ctorch_tensor_numel(handle)) }
  public var dtype: DType {
    guard let type = DType(rawValue: ctorch_tensor_dtype(handle)) else {
      fatalError("Tensor holds an element type this package does not support (code \(ctorch_tensor_dtype(handle)))")
    }
    return type
  }
  public var device: Device {
    ctorch_tensor_device_type(handle) == CTORCH_CUDA ? .cuda(Int(ctorch_tensor_device_index(handle))) : .cpu
  }
  public var isContiguous: Bool { ctorch_tensor_is_contiguous(handle) }
}

extension Tensor: CustomStringConvertible {
  /// libtorch's printed form of the values, with the shape and type.
  public var description: String {
    final class Box { var text = "" }
    let box = Box()
    let status = ctorch_tensor_describe(
      handle,
      { context, text in
        Unmanaged<Box>.fromOpaque(context!).takeUnretainedValue().text = String(cString: text!)
      }, Unmanaged.passUnretained(box).toOpaque())
    return status == CTORCH_OK ? box.text : "Tensor(\(shape), \(dtype))"
  }
}

// MARK: - Calling the shim

/// A libtorch op that failed: the op, its inputs' shapes and types, and libtorch's message (no C++
/// frames). `isOutOfMemory` when an allocation was refused; the message then holds the bytes asked for.
public struct OpFailure: Sendable, CustomStringConvertible {
  public let op: String
  public let inputs: String
  public let message: String

  public var isOutOfMemory: Bool {
    message.contains("not enough memory") || message.contains("can't allocate memory") || message.contains("out of memory")
  }

  /// The bytes the failed allocation asked for, when libtorch's message says.
  public var requestedBytes: Int? {
    guard let range = message.range(of: #"allocate \d+ bytes"#, options: .regularExpression) else { return nil }
    return Int(message[range].split(separator: " ")[1])
  }

  public var description: String {
    if isOutOfMemory {
      let size = requestedBytes.map { String(format: " (%.1f MiB asked for)", Double($0) / 1_048_576) } ?? ""
      return "out of memory in Torch.\(op) for inputs [\(inputs)]\(size); lower the batch size or the image size"
    }
    return "Torch.\(op) failed for inputs [\(inputs)]: \(message)"
  }
}

extension Torch {
  /// What happens when a libtorch op fails, which in this package means a bug or a resource running out:
  /// by default the process stops with the failure (a trap, with a backtrace for debugging). A command-line
  /// tool sets a handler that reports the failure in one line and exits.
  nonisolated(unsafe) public static var opFailureHandler: (OpFailure) -> Never = { fatalError("\($0)") }
}

/// Stops the program for a failed op through `Torch.opFailureHandler`, naming the op, its inputs and libtorch's message.
@usableFromInline
func opFailed(_ op: StaticString, _ inputs: [Tensor]) -> Never {
  let message = String(cString: ctorch_last_error()).split(separator: "\n").first.map(String.init) ?? ""
  let shapes = inputs.map { "\($0.shape) \($0.dtype)" }.joined(separator: ", ")
  Torch.opFailureHandler(OpFailure(op: "\(op)", inputs: shapes, message: message))
}

@inline(__always)
func check(_ status: ctorch_status, _ op: StaticString, _ inputs: Tensor...) {
  if status != CTORCH_OK { opFailed(op, inputs) }
}

/// Runs a shim call that writes one new tensor, and wraps it.
@inline(__always)
func produce(_ op: StaticString, _ inputs: [Tensor], _ body: (UnsafeMutablePointer<ctorch_tensor?>) -> ctorch_status) -> Tensor {
  var out: ctorch_tensor?
  let status = body(&out)
  guard status == CTORCH_OK, let handle = out else { opFailed(op, inputs) }
  return Tensor(handle: handle)
}

@inline(__always)
func produce(_ op: StaticString, _ input: Tensor, _ body: (UnsafeMutablePointer<ctorch_tensor?>) -> ctorch_status) -> Tensor {
  var out: ctorch_tensor?
  let status = withExtendedLifetime(input) { body(&out) }
  guard status == CTORCH_OK, let handle = out else { opFailed(op, [input]) }
  return Tensor(handle: handle)
}

/// Runs a shim call that writes two new tensors (values and indices).
@inline(__always)
func producePair(
  _ op: StaticString, _ input: Tensor,
  _ body: (UnsafeMutablePointer<ctorch_tensor?>, UnsafeMutablePointer<ctorch_tensor?>) -> ctorch_status
) -> (Tensor, Tensor) {
  var first: ctorch_tensor?
  var second: ctorch_tensor?
  let status = withExtendedLifetime(input) { body(&first, &second) }
  guard status == CTORCH_OK, let a = first, let b = second else { opFailed(op, [input]) }
  return (Tensor(handle: a), Tensor(handle: b))
}

/// Runs a shim call that emits a list of tensors through a sink.
func produceList(_ op: StaticString, _ input: Tensor, _ body: (ctorch_tensor_sink, UnsafeMutableRawPointer) -> ctorch_status) -> [Tensor] {
  final class Collector { var tensors: [Tensor] = [] }
  let collector = Collector()
  let sink: ctorch_tensor_sink = { context, handle in
    Unmanaged<Collector>.fromOpaque(context!).takeUnretainedValue().tensors.append(Tensor(handle: handle!))
  }
  let status = withExtendedLifetime(input) { body(sink, Unmanaged.passUnretained(collector).toOpaque()) }
  if status != CTORCH_OK { opFailed(op, [input]) }
  return collector.tensors
}

/// Passes the handles of optional tensors (nil → NULL) to body.
@inline(__always)
func withOptionalHandle<R>(_ tensor: Tensor?, _ body: (ctorch_tensor?) -> R) -> R {
  guard let tensor else { return body(nil) }
  return withExtendedLifetime(tensor) { body(tensor.handle) }
}

func withHandles<R>(_ tensors: [Tensor?], _ body: (UnsafePointer<ctorch_tensor?>, Int64) -> R) -> R {
  let handles = tensors.map { $0?.handle }
  return withExtendedLifetime(tensors) { handles.withUnsafeBufferPointer { body($0.baseAddress!, Int64($0.count)) } }
}

func withInt64s<R>(_ values: [Int], _ body: (UnsafePointer<Int64>?, Int64) -> R) -> R {
  values.withUnsafeBufferPointer { buffer in
    buffer.withMemoryRebound(to: Int64.self) { body($0.baseAddress, Int64($0.count)) }
  }
}
