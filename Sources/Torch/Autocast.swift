import CTorch

/// Runs `body` with autocast on for `device`'s type on this thread: the ops libtorch lists for it
/// (convolutions, linear layers, matrix products) run in `dtype` (bfloat16 by default), the others in
/// float32; weights stay float32. Nested calls restore the outer state on return.
public func withAutocast<Result>(_ dtype: DType = .bfloat16, device: Device = .cpu, _ body: () throws -> Result) rethrows -> Result {
  var previous = ctorch_autocast_state()
  guard ctorch_autocast_enter(device.type, dtype.rawValue, &previous) == CTORCH_OK else { opFailed("autocast", []) }
  defer { _ = ctorch_autocast_exit(device.type, previous) }
  return try body()
}

/// Whether autocast is on for `device`'s type on this thread.
public func isAutocastEnabled(device: Device = .cpu) -> Bool { ctorch_autocast_is_enabled(device.type) }

/// Arithmetic precision of a forward pass.
public enum Precision: String, Sendable, Codable, CaseIterable {
  /// Everything in float32.
  case fp32
  /// Autocast to bfloat16: convolutions and matrix products in bfloat16, float32 weights, losses and
  /// the rest in float32. Fast on GPUs and on CPUs with bfloat16 instructions (AVX-512 BF16, AMX);
  /// very slow on CPUs without them, where libtorch converts every element.
  case bf16

  /// Runs `body` in this precision on `device`.
  public func run<Result>(on device: Device = .cpu, _ body: () throws -> Result) rethrows -> Result {
    switch self {
    case .fp32: return try body()
    case .bf16: return try withAutocast(.bfloat16, device: device, body)
    }
  }
}
