import CTorch

/// Element-wise arithmetic with broadcasting and PyTorch's type promotion.
extension Tensor {
  func binary(_ op: Int32, _ other: Tensor, _ name: StaticString) -> Tensor {
    produce(name, [self, other]) { out in withExtendedLifetime((self, other)) { ctorch_binary(op, handle, other.handle, out) } }
  }

  func binary(_ op: Int32, _ scalar: TensorScalar, _ name: StaticString) -> Tensor {
    produce(name, self) { ctorch_binary_scalar(op, handle, scalar.raw, $0) }
  }

  public static func + (lhs: Tensor, rhs: Tensor) -> Tensor { lhs.binary(Int32(CTORCH_ADD), rhs, "add") }
  public static func - (lhs: Tensor, rhs: Tensor) -> Tensor { lhs.binary(Int32(CTORCH_SUB), rhs, "sub") }
  public static func * (lhs: Tensor, rhs: Tensor) -> Tensor { lhs.binary(Int32(CTORCH_MUL), rhs, "mul") }
  public static func / (lhs: Tensor, rhs: Tensor) -> Tensor { lhs.binary(Int32(CTORCH_DIV), rhs, "div") }
  public static prefix func - (tensor: Tensor) -> Tensor { tensor.unary(Int32(CTORCH_NEG), "neg") }

  public static func + <S: TensorScalarConvertible>(lhs: Tensor, rhs: S) -> Tensor {
    lhs.binary(Int32(CTORCH_ADD), rhs.tensorScalar, "add")
  }
  public static func - <S: TensorScalarConvertible>(lhs: Tensor, rhs: S) -> Tensor {
    lhs.binary(Int32(CTORCH_SUB), rhs.tensorScalar, "sub")
  }
  public static func * <S: TensorScalarConvertible>(lhs: Tensor, rhs: S) -> Tensor {
    lhs.binary(Int32(CTORCH_MUL), rhs.tensorScalar, "mul")
  }
  public static func / <S: TensorScalarConvertible>(lhs: Tensor, rhs: S) -> Tensor {
    lhs.binary(Int32(CTORCH_DIV), rhs.tensorScalar, "div")
  }
  public static func + <S: TensorScalarConvertible>(lhs: S, rhs: Tensor) -> Tensor {
    rhs.binary(Int32(CTORCH_ADD), lhs.tensorScalar, "add")
  }
  public static func - <S: TensorScalarConvertible>(lhs: S, rhs: Tensor) -> Tensor {
    rhs.binary(Int32(CTORCH_RSUB), lhs.tensorScalar, "rsub")
  }
  public static func * <S: TensorScalarConvertible>(lhs: S, rhs: Tensor) -> Tensor {
    rhs.binary(Int32(CTORCH_MUL), lhs.tensorScalar, "mul")
  }
  public static func / <S: TensorScalarConvertible>(lhs: S, rhs: Tensor) -> Tensor {
    rhs.binary(Int32(CTORCH_RDIV), lhs.tensorScalar, "rdiv")
  }

  public func pow(_ exponent: Tensor) -> Tensor { binary(Int32(CTORCH_POW), exponent, "pow") }
  /// `base` raised to each element.
  public static func pow(_ base: Double, _ exponent: Tensor) -> Tensor { exponent.binary(Int32(CTORCH_RPOW), .real(base), "rpow") }
  public func pow(_ exponent: some TensorScalarConvertible) -> Tensor { binary(Int32(CTORCH_POW), exponent.tensorScalar, "pow") }
  /// Element-wise remainder with the sign of the divisor (Python's %).
  public func remainder(_ divisor: Tensor) -> Tensor { binary(Int32(CTORCH_REMAINDER), divisor, "remainder") }
  public func remainder(_ divisor: some TensorScalarConvertible) -> Tensor {
    binary(Int32(CTORCH_REMAINDER), divisor.tensorScalar, "remainder")
  }
  /// Division rounded toward negative infinity.
  public func floorDivided(by divisor: Tensor) -> Tensor { binary(Int32(CTORCH_DIV_FLOOR), divisor, "floorDivide") }
  public func floorDivided(by divisor: some TensorScalarConvertible) -> Tensor {
    binary(Int32(CTORCH_DIV_FLOOR), divisor.tensorScalar, "floorDivide")
  }
  public func atan2(_ other: Tensor) -> Tensor { binary(Int32(CTORCH_ATAN2), other, "atan2") }
  public func maximum(_ other: Tensor) -> Tensor { binary(Int32(CTORCH_MAXIMUM), other, "maximum") }
  public func minimum(_ other: Tensor) -> Tensor { binary(Int32(CTORCH_MINIMUM), other, "minimum") }

  /// Matrix product with NumPy-style batching and broadcasting.
  public func matmul(_ other: Tensor) -> Tensor { binary(Int32(CTORCH_MATMUL), other, "matmul") }
  /// Batched matrix product: `[b, n, m] x [b, m, p] -> [b, n, p]`.
  public func bmm(_ other: Tensor) -> Tensor { binary(Int32(CTORCH_BMM), other, "bmm") }
  /// Matrix product of two 2-D tensors.
  public func mm(_ other: Tensor) -> Tensor { binary(Int32(CTORCH_MM), other, "mm") }
}

/// Element-wise comparisons and logic, giving bool tensors.
extension Tensor {
  public static func .== (lhs: Tensor, rhs: Tensor) -> Tensor { lhs.binary(Int32(CTORCH_EQ), rhs, "eq") }
  public static func .!= (lhs: Tensor, rhs: Tensor) -> Tensor { lhs.binary(Int32(CTORCH_NE), rhs, "ne") }
  public static func .< (lhs: Tensor, rhs: Tensor) -> Tensor { lhs.binary(Int32(CTORCH_LT), rhs, "lt") }
  public static func .<= (lhs: Tensor, rhs: Tensor) -> Tensor { lhs.binary(Int32(CTORCH_LE), rhs, "le") }
  public static func .> (lhs: Tensor, rhs: Tensor) -> Tensor { lhs.binary(Int32(CTORCH_GT), rhs, "gt") }
  public static func .>= (lhs: Tensor, rhs: Tensor) -> Tensor { lhs.binary(Int32(CTORCH_GE), rhs, "ge") }
  public static func .== <S: TensorScalarConvertible>(lhs: Tensor, rhs: S) -> Tensor {
    lhs.binary(Int32(CTORCH_EQ), rhs.tensorScalar, "eq")
  }
  public static func .!= <S: TensorScalarConvertible>(lhs: Tensor, rhs: S) -> Tensor {
    lhs.binary(Int32(CTORCH_NE), rhs.tensorScalar, "ne")
  }
  public static func .< <S: TensorScalarConvertible>(lhs: Tensor, rhs: S) -> Tensor { lhs.binary(Int32(CTORCH_LT), rhs.tensorScalar, "lt") }
  public static func .<= <S: TensorScalarConvertible>(lhs: Tensor, rhs: S) -> Tensor {
    lhs.binary(Int32(CTORCH_LE), rhs.tensorScalar, "le")
  }
  public static func .> <S: TensorScalarConvertible>(lhs: Tensor, rhs: S) -> Tensor { lhs.binary(Int32(CTORCH_GT), rhs.tensorScalar, "gt") }
  public static func .>= <S: TensorScalarConvertible>(lhs: Tensor, rhs: S) -> Tensor {
    lhs.binary(Int32(CTORCH_GE), rhs.tensorScalar, "ge")
  }
  public static func .& (lhs: Tensor, rhs: Tensor) -> Tensor { lhs.binary(Int32(CTORCH_LOGICAL_AND), rhs, "logicalAnd") }
  public static func .| (lhs: Tensor, rhs: Tensor) -> Tensor { lhs.binary(Int32(CTORCH_LOGICAL_OR), rhs, "logicalOr") }
  public static func .^ (lhs: Tensor, rhs: Tensor) -> Tensor { lhs.binary(Int32(CTORCH_LOGICAL_XOR), rhs, "logicalXor") }
  public static prefix func .! (tensor: Tensor) -> Tensor { tensor.unary(Int32(CTORCH_LOGICAL_NOT), "logicalNot") }

  public func logicalNot() -> Tensor { unary(Int32(CTORCH_LOGICAL_NOT), "logicalNot") }

  /// `a` where `condition` holds, else `b`, broadcasting all three.
  public static func `where`(_ condition: Tensor, _ a: Tensor, _ b: Tensor) -> Tensor {
    produce("where", [condition, a, b]) { out in
      withExtendedLifetime((condition, a, b)) { ctorch_where(condition.handle, a.handle, b.handle, out) }
    }
  }

  /// Whether all elements are close: `|a - b| <= atol + rtol * |b|`.
  public func isClose(to other: Tensor, relativeTolerance: Double = 1e-5, absoluteTolerance: Double = 1e-8) -> Bool {
    var result = false
    check(
      withExtendedLifetime((self, other)) { ctorch_allclose(handle, other.handle, relativeTolerance, absoluteTolerance, &result) },
      "allclose", self, other)
    return result
  }
}
