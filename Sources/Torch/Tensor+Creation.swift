import CTorch

extension Tensor {
  /// A tensor holding a copy of `values`, with the given shape (default: one dimension).
  public convenience init<T: TensorElement>(_ values: [T], shape: [Int]? = nil) {
    let shape = shape ?? [values.count]
    precondition(shape.reduce(1, *) == values.count, "Tensor(_:shape:): \(values.count) values do not fill shape \(shape)")
    var out: ctorch_tensor?
    let status = values.withUnsafeBytes { bytes in
      withInt64s(shape) { ctorch_from_data(bytes.baseAddress, $0, $1, T.dtype.rawValue, &out) }
    }
    guard status == CTORCH_OK, let out else { opFailed("fromArray", []) }
    self.init(handle: out)
  }

  /// A zero-dimensional tensor holding one value.
  public convenience init<T: TensorElement>(scalar value: T) {
    self.init([value], shape: [])
  }

  /// A tensor holding a copy of raw bytes laid out contiguously in `dtype`.
  public convenience init(bytes: UnsafeRawBufferPointer, shape: [Int], dtype: DType) {
    let expected = shape.reduce(1, *) * dtype.byteSize
    precondition(bytes.count == expected, "Tensor(bytes:): \(bytes.count) bytes for shape \(shape) \(dtype) needs \(expected)")
    var out: ctorch_tensor?
    let status = withInt64s(shape) { ctorch_from_data(bytes.baseAddress, $0, $1, dtype.rawValue, &out) }
    guard status == CTORCH_OK, let out else { opFailed("fromBytes", []) }
    self.init(handle: out)
  }

  /// Uninitialized memory.
  public static func empty(_ shape: [Int], dtype: DType = .float32, device: Device = .cpu) -> Tensor {
    produce("empty", []) { out in withInt64s(shape) { ctorch_empty($0, $1, dtype.rawValue, device.type, device.index, out) } }
  }

  public static func full(_ shape: [Int], _ value: some TensorScalarConvertible, dtype: DType = .float32, device: Device = .cpu) -> Tensor {
    produce("full", []) { out in
      withInt64s(shape) { ctorch_full($0, $1, value.tensorScalar.raw, dtype.rawValue, device.type, device.index, out) }
    }
  }

  public static func zeros(_ shape: [Int], dtype: DType = .float32, device: Device = .cpu) -> Tensor {
    full(shape, 0, dtype: dtype, device: device)
  }

  public static func ones(_ shape: [Int], dtype: DType = .float32, device: Device = .cpu) -> Tensor {
    full(shape, 1, dtype: dtype, device: device)
  }

  /// Values from `start` up to (not including) `end` in steps of `step`.
  public static func arange(
    _ start: some TensorScalarConvertible, _ end: some TensorScalarConvertible, step: some TensorScalarConvertible = 1,
    dtype: DType = .int64, device: Device = .cpu
  ) -> Tensor {
    produce("arange", []) {
      ctorch_arange(start.tensorScalar.raw, end.tensorScalar.raw, step.tensorScalar.raw, dtype.rawValue, device.type, device.index, $0)
    }
  }

  /// `0, 1, ..., end - 1`.
  public static func arange(_ end: Int, dtype: DType = .int64, device: Device = .cpu) -> Tensor {
    arange(0, end, dtype: dtype, device: device)
  }

  /// `steps` evenly spaced values from `start` to `end`, both included.
  public static func linspace(_ start: Double, _ end: Double, steps: Int, dtype: DType = .float32, device: Device = .cpu) -> Tensor {
    produce("linspace", []) { ctorch_linspace(start, end, Int64(steps), dtype.rawValue, device.type, device.index, $0) }
  }

  public static func eye(_ rows: Int, _ columns: Int? = nil, dtype: DType = .float32, device: Device = .cpu) -> Tensor {
    produce("eye", []) { ctorch_eye(Int64(rows), Int64(columns ?? rows), dtype.rawValue, device.type, device.index, $0) }
  }

  /// Uniform samples in [0, 1).
  public static func rand(_ shape: [Int], dtype: DType = .float32, device: Device = .cpu, generator: Generator? = nil) -> Tensor {
    random(kind: 0, shape, dtype, device, generator)
  }

  /// Standard normal samples.
  public static func randn(_ shape: [Int], dtype: DType = .float32, device: Device = .cpu, generator: Generator? = nil) -> Tensor {
    random(kind: 1, shape, dtype, device, generator)
  }

  /// Integers uniform in [low, high).
  public static func randint(
    _ low: Int, _ high: Int, _ shape: [Int], dtype: DType = .int64, device: Device = .cpu, generator: Generator? = nil
  ) -> Tensor {
    produce("randint", []) { out in
      withInt64s(shape) {
        ctorch_randint(Int64(low), Int64(high), $0, $1, dtype.rawValue, device.type, device.index, generator?.handle, out)
      }
    }
  }

  /// A random permutation of `0..<count` (int64).
  public static func randperm(_ count: Int, device: Device = .cpu, generator: Generator? = nil) -> Tensor {
    produce("randperm", []) { ctorch_randperm(Int64(count), device.type, device.index, generator?.handle, $0) }
  }

  private static func random(kind: Int32, _ shape: [Int], _ dtype: DType, _ device: Device, _ generator: Generator?) -> Tensor {
    produce("random", []) { out in
      withInt64s(shape) { ctorch_random(kind, $0, $1, dtype.rawValue, device.type, device.index, generator?.handle, out) }
    }
  }

  /// Converts to another element type and/or device; returns `self` when nothing changes, unless `copy`.
  public func to(dtype: DType? = nil, device: Device? = nil, copy: Bool = false) -> Tensor {
    let dtype = dtype ?? self.dtype
    let device = device ?? self.device
    return produce("to", self) { ctorch_to(handle, dtype.rawValue, device.type, device.index, copy, $0) }
  }

  public func to(_ dtype: DType) -> Tensor { to(dtype: dtype) }

  /// A copy on `device` that may still be in flight when this returns (from pinned memory to a GPU; ops
  /// queued after it on the GPU wait for it); `self` when it is there already.
  public func to(_ device: Device, nonBlocking: Bool) -> Tensor {
    guard nonBlocking else { return to(device: device) }
    return produce("to_async", self) { ctorch_to_device_async(handle, device.type, device.index, $0) }
  }

  /// A copy in page-locked memory, which a GPU copies from without waiting; `self` without a GPU.
  public func pinned() -> Tensor {
    produce("pin_memory", self) { ctorch_pin_memory(handle, $0) }
  }

  /// Another reference to the same tensor (same storage, same autograd identity).
  public func shared() -> Tensor {
    produce("share", self) { ctorch_tensor_share(handle, $0) }
  }

  // MARK: Back to Swift

  /// The values in row-major order, converted to `T`'s dtype when needed (moved to the CPU).
  public func asArray<T: TensorElement>(_ type: T.Type = T.self) -> [T] {
    let source = to(dtype: T.dtype, device: .cpu).contiguous()
    let count = source.elementCount
    return withExtendedLifetime(source) {
      guard count > 0 else { return [] }
      let pointer = ctorch_tensor_data(source.handle)!.assumingMemoryBound(to: T.self)
      return Array(UnsafeBufferPointer(start: pointer, count: count))
    }
  }

  /// The value of a one-element tensor.
  public func item<T: TensorElement>(_ type: T.Type = T.self) -> T {
    var value = ctorch_scalar()
    check(withExtendedLifetime(self) { ctorch_item(handle, &value) }, "item", self)
    return T(scalar: TensorScalar(raw: value))
  }

  /// Calls body with the raw bytes of a contiguous CPU copy of the tensor.
  public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
    let source = to(device: .cpu).contiguous()
    return try withExtendedLifetime(source) {
      let count = source.elementCount * source.dtype.byteSize
      let pointer = count > 0 ? ctorch_tensor_data(source.handle) : nil
      return try body(UnsafeRawBufferPointer(start: pointer, count: count))
    }
  }
}
