import CTorch

/// A tensor's element type.
public enum DType: Int32, Sendable, CaseIterable, CustomStringConvertible {
  case float32 = 0
  case float64 = 1
  case float16 = 2
  case bfloat16 = 3
  case int64 = 4
  case int32 = 5
  case uint8 = 6
  case bool = 7
  case int8 = 8
  case int16 = 9

  /// Bytes per element.
  public var byteSize: Int {
    switch self {
    case .float64, .int64: 8
    case .float32, .int32: 4
    case .float16, .bfloat16, .int16: 2
    case .uint8, .bool, .int8: 1
    }
  }

  public var isFloatingPoint: Bool { [.float32, .float64, .float16, .bfloat16].contains(self) }

  public var description: String {
    switch self {
    case .float32: "float32"
    case .float64: "float64"
    case .float16: "float16"
    case .bfloat16: "bfloat16"
    case .int64: "int64"
    case .int32: "int32"
    case .uint8: "uint8"
    case .bool: "bool"
    case .int8: "int8"
    case .int16: "int16"
    }
  }
}

/// A Swift type whose values can be stored in a tensor without conversion.
public protocol TensorElement: Sendable {
  static var dtype: DType { get }
  init(scalar: TensorScalar)
}

extension Float: TensorElement {
  public static var dtype: DType { .float32 }
  public init(scalar: TensorScalar) { self = Float(scalar.doubleValue) }
}
extension Double: TensorElement {
  public static var dtype: DType { .float64 }
  public init(scalar: TensorScalar) { self = scalar.doubleValue }
}
extension Int64: TensorElement {
  public static var dtype: DType { .int64 }
  public init(scalar: TensorScalar) { self = Int64(scalar.integerValue) }
}
extension Int: TensorElement {
  public static var dtype: DType { .int64 }
  public init(scalar: TensorScalar) { self = scalar.integerValue }
}
extension Int32: TensorElement {
  public static var dtype: DType { .int32 }
  public init(scalar: TensorScalar) { self = Int32(scalar.integerValue) }
}
extension Int16: TensorElement {
  public static var dtype: DType { .int16 }
  public init(scalar: TensorScalar) { self = Int16(scalar.integerValue) }
}
extension Int8: TensorElement {
  public static var dtype: DType { .int8 }
  public init(scalar: TensorScalar) { self = Int8(scalar.integerValue) }
}
extension UInt8: TensorElement {
  public static var dtype: DType { .uint8 }
  public init(scalar: TensorScalar) { self = UInt8(scalar.integerValue) }
}
extension Bool: TensorElement {
  public static var dtype: DType { .bool }
  public init(scalar: TensorScalar) { self = scalar.integerValue != 0 }
}

/// A number as libtorch sees it: real, integer or boolean. Integer scalars keep integer tensors integral.
public enum TensorScalar: Sendable, Equatable {
  case real(Double)
  case integer(Int)
  case boolean(Bool)

  public var doubleValue: Double {
    switch self {
    case .real(let value): value
    case .integer(let value): Double(value)
    case .boolean(let value): value ? 1 : 0
    }
  }

  public var integerValue: Int {
    switch self {
    case .real(let value): Int(value)
    case .integer(let value): value
    case .boolean(let value): value ? 1 : 0
    }
  }

  var raw: ctorch_scalar {
    switch self {
    case .real(let value): ctorch_scalar(kind: 0, real: value, integer: 0)
    case .integer(let value): ctorch_scalar(kind: 1, real: Double(value), integer: Int64(value))
    case .boolean(let value): ctorch_scalar(kind: 2, real: value ? 1 : 0, integer: value ? 1 : 0)
    }
  }

  init(raw: ctorch_scalar) {
    switch raw.kind {
    case 1: self = .integer(Int(raw.integer))
    case 2: self = .boolean(raw.integer != 0)
    default: self = .real(raw.real)
    }
  }
}

/// Values that convert to a `TensorScalar`: Swift's numbers and Bool.
public protocol TensorScalarConvertible {
  var tensorScalar: TensorScalar { get }
}
extension Double: TensorScalarConvertible { public var tensorScalar: TensorScalar { .real(self) } }
extension Float: TensorScalarConvertible { public var tensorScalar: TensorScalar { .real(Double(self)) } }
extension Int: TensorScalarConvertible { public var tensorScalar: TensorScalar { .integer(self) } }
extension Int64: TensorScalarConvertible { public var tensorScalar: TensorScalar { .integer(Int(self)) } }
extension Int32: TensorScalarConvertible { public var tensorScalar: TensorScalar { .integer(Int(self)) } }
extension Bool: TensorScalarConvertible { public var tensorScalar: TensorScalar { .boolean(self) } }
extension TensorScalar: TensorScalarConvertible { public var tensorScalar: TensorScalar { self } }
