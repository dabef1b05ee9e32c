import CTorch

/// Element-wise math functions.
extension Tensor {
  func unary(_ op: Int32, _ name: StaticString) -> Tensor {
    produce(name, self) { ctorch_unary(op, handle, $0) }
  }

  public func exp() -> Tensor { unary(Int32(CTORCH_EXP), "exp") }
  public func log() -> Tensor { unary(Int32(CTORCH_LOG), "log") }
  public func log2() -> Tensor { unary(Int32(CTORCH_LOG2), "log2") }
  public func log1p() -> Tensor { unary(Int32(CTORCH_LOG1P), "log1p") }
  public func expm1() -> Tensor { unary(Int32(CTORCH_EXPM1), "expm1") }
  public func sqrt() -> Tensor { unary(Int32(CTORCH_SQRT), "sqrt") }
  public func rsqrt() -> Tensor { unary(Int32(CTORCH_RSQRT), "rsqrt") }
  public func square() -> Tensor { unary(Int32(CTORCH_SQUARE), "square") }
  public func abs() -> Tensor { unary(Int32(CTORCH_ABS), "abs") }
  public func sign() -> Tensor { unary(Int32(CTORCH_SIGN), "sign") }
  public func reciprocal() -> Tensor { unary(Int32(CTORCH_RECIPROCAL), "reciprocal") }
  public func sin() -> Tensor { unary(Int32(CTORCH_SIN), "sin") }
  public func cos() -> Tensor { unary(Int32(CTORCH_COS), "cos") }
  public func atan() -> Tensor { unary(Int32(CTORCH_ATAN), "atan") }
  public func erf() -> Tensor { unary(Int32(CTORCH_ERF), "erf") }
  public func floor() -> Tensor { unary(Int32(CTORCH_FLOOR), "floor") }
  public func ceil() -> Tensor { unary(Int32(CTORCH_CEIL), "ceil") }
  /// Rounds half to even, as PyTorch does.
  public func round() -> Tensor { unary(Int32(CTORCH_ROUND), "round") }
  public func trunc() -> Tensor { unary(Int32(CTORCH_TRUNC), "trunc") }
  public func sigmoid() -> Tensor { unary(Int32(CTORCH_SIGMOID), "sigmoid") }
  public func tanh() -> Tensor { unary(Int32(CTORCH_TANH), "tanh") }
  public func relu() -> Tensor { unary(Int32(CTORCH_RELU), "relu") }
  public func silu() -> Tensor { unary(Int32(CTORCH_SILU), "silu") }
  /// GELU, exact (erf) or with the tanh approximation.
  public func gelu(approximateWithTanh: Bool = false) -> Tensor {
    unary(Int32(approximateWithTanh ? CTORCH_GELU_TANH : CTORCH_GELU), "gelu")
  }
  public func isNaN() -> Tensor { unary(Int32(CTORCH_ISNAN), "isnan") }
  public func isFinite() -> Tensor { unary(Int32(CTORCH_ISFINITE), "isfinite") }

  /// The inverse of sigmoid, `log(x / (1 - x))`, with x clamped to [eps, 1 - eps] as DETR's variants do.
  public func inverseSigmoid(epsilon: Double = 1e-5) -> Tensor {
    let x = clamped(min: 0, max: 1)
    let x1 = x.clamped(min: epsilon)
    let x2 = (1 - x).clamped(min: epsilon)
    return (x1 / x2).log()
  }

  public func clamped(min: Double? = nil, max: Double? = nil) -> Tensor {
    produce("clamp", self) { ctorch_clamp(handle, min != nil, min ?? 0, max != nil, max ?? 0, $0) }
  }

  /// A copy with its own storage, still connected to the autograd graph.
  public func clone() -> Tensor { unary(Int32(CTORCH_CLONE), "clone") }
  /// `self` if already contiguous, else a contiguous copy.
  public func contiguous() -> Tensor { isContiguous ? self : unary(Int32(CTORCH_CONTIGUOUS), "contiguous") }
  public func zerosLike() -> Tensor { unary(Int32(CTORCH_ZEROS_LIKE), "zerosLike") }
  public func onesLike() -> Tensor { unary(Int32(CTORCH_ONES_LIKE), "onesLike") }
  public func emptyLike() -> Tensor { unary(Int32(CTORCH_EMPTY_LIKE), "emptyLike") }
}
