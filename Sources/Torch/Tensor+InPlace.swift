import CTorch

/// In-place updates. They modify the tensor's storage (and every view of it). On a leaf that
/// requires grad, run them inside `withNoGrad` (optimizers and initializers do).
extension Tensor {
  public func copy(from source: Tensor) {
    check(withExtendedLifetime((self, source)) { ctorch_copy_(handle, source.handle) }, "copy_", self, source)
  }

  /// Makes this tensor hold `source`'s data (any dtype or device) while keeping its identity and
  /// `requiresGrad`; how a module's parameters change dtype or device.
  public func replaceData(with source: Tensor) {
    check(withExtendedLifetime(source) { ctorch_set_data(handle, source.handle) }, "set_data", self, source)
  }

  public func fill(with value: some TensorScalarConvertible) {
    check(ctorch_fill_(handle, value.tensorScalar.raw), "fill_", self)
  }

  public func zero() {
    check(ctorch_unary_(Int32(CTORCH_ZEROS_LIKE), handle), "zero_", self)
  }

  /// Fills with samples uniform in [low, high).
  public func uniformFill(low: Double, high: Double, generator: Generator? = nil) {
    check(ctorch_uniform_(handle, low, high, generator?.handle), "uniform_", self)
  }

  /// Fills with normal samples.
  public func normalFill(mean: Double = 0, standardDeviation: Double = 1, generator: Generator? = nil) {
    check(ctorch_normal_(handle, mean, standardDeviation, generator?.handle), "normal_", self)
  }

  public static func += (lhs: Tensor, rhs: Tensor) { lhs.inPlace(Int32(CTORCH_ADD), rhs, "add_") }
  public static func -= (lhs: Tensor, rhs: Tensor) { lhs.inPlace(Int32(CTORCH_SUB), rhs, "sub_") }
  public static func *= (lhs: Tensor, rhs: Tensor) { lhs.inPlace(Int32(CTORCH_MUL), rhs, "mul_") }
  public static func /= (lhs: Tensor, rhs: Tensor) { lhs.inPlace(Int32(CTORCH_DIV), rhs, "div_") }
  public static func += <S: TensorScalarConvertible>(lhs: Tensor, rhs: S) { lhs.inPlace(Int32(CTORCH_ADD), rhs.tensorScalar, "add_") }
  public static func -= <S: TensorScalarConvertible>(lhs: Tensor, rhs: S) { lhs.inPlace(Int32(CTORCH_SUB), rhs.tensorScalar, "sub_") }
  public static func *= <S: TensorScalarConvertible>(lhs: Tensor, rhs: S) { lhs.inPlace(Int32(CTORCH_MUL), rhs.tensorScalar, "mul_") }
  public static func /= <S: TensorScalarConvertible>(lhs: Tensor, rhs: S) { lhs.inPlace(Int32(CTORCH_DIV), rhs.tensorScalar, "div_") }

  /// `self += alpha * other`.
  public func add(_ other: Tensor, scaledBy alpha: Double) {
    check(withExtendedLifetime(other) { ctorch_add_scaled_(handle, other.handle, TensorScalar.real(alpha).raw) }, "add_", self, other)
  }

  /// `self += value * a * b`.
  public func addProduct(_ a: Tensor, _ b: Tensor, scaledBy value: Double) {
    check(
      withExtendedLifetime((a, b)) { ctorch_addcmul_(handle, a.handle, b.handle, TensorScalar.real(value).raw) }, "addcmul_", self, a, b)
  }

  /// `self += value * a / b`.
  public func addQuotient(_ a: Tensor, _ b: Tensor, scaledBy value: Double) {
    check(
      withExtendedLifetime((a, b)) { ctorch_addcdiv_(handle, a.handle, b.handle, TensorScalar.real(value).raw) }, "addcdiv_", self, a, b)
  }

  /// `self += weight * (end - self)`.
  public func interpolate(toward end: Tensor, weight: Double) {
    check(withExtendedLifetime(end) { ctorch_lerp_(handle, end.handle, TensorScalar.real(weight).raw) }, "lerp_", self, end)
  }

  public func clamp(min: Double? = nil, max: Double? = nil) {
    check(ctorch_clamp_(handle, min != nil, min ?? 0, max != nil, max ?? 0), "clamp_", self)
  }

  /// Sets elements where `mask` holds to `value`.
  public func fill(where mask: Tensor, with value: some TensorScalarConvertible) {
    check(withExtendedLifetime(mask) { ctorch_masked_fill_(handle, mask.handle, value.tensorScalar.raw) }, "masked_fill_", self, mask)
  }

  private func inPlace(_ op: Int32, _ other: Tensor, _ name: StaticString) {
    check(withExtendedLifetime(other) { ctorch_binary_(op, handle, other.handle) }, name, self, other)
  }

  private func inPlace(_ op: Int32, _ scalar: TensorScalar, _ name: StaticString) {
    check(ctorch_binary_scalar_(op, handle, scalar.raw), name, self)
  }
}
