/// A value decoded from a PyTorch checkpoint's pickle: only data, never an object that could run code.
///
/// Dictionaries keep their order and may have non-string keys (an optimizer's state is keyed by
/// parameter index). `argparse.Namespace`, which the official training scripts store as `args`, is
/// read as its attributes.
public indirect enum PickleValue: @unchecked Sendable {
  case none
  case bool(Bool)
  case int(Int)
  /// An integer wider than 64 bits: its little-endian two's-complement bytes.
  case bigInt([UInt8])
  case float(Double)
  case string(String)
  case bytes([UInt8])
  case list([PickleValue])
  case tuple([PickleValue])
  case set([PickleValue])
  case dict([(key: PickleValue, value: PickleValue)])
  case tensor(Tensor)
  /// An `argparse.Namespace`: its attributes in order.
  case namespace([(name: String, value: PickleValue)])

  /// The value under a string key of a dictionary or namespace.
  public subscript(key: String) -> PickleValue? {
    switch self {
    case .dict(let entries): entries.first { $0.key.string == key }?.value
    case .namespace(let attributes): attributes.first { $0.name == key }?.value
    default: nil
    }
  }

  public var string: String? { if case .string(let text) = self { text } else { nil } }
  public var tensor: Tensor? { if case .tensor(let tensor) = self { tensor } else { nil } }
  public var integer: Int? { if case .int(let value) = self { value } else { nil } }

  /// A dictionary whose keys are all strings and whose values are all tensors (a state dict), else nil.
  /// A list or tuple of strings (e.g. MMDetection's `meta.CLASSES`), else nil.
  public var strings: [String]? {
    switch self {
    case .list(let items), .tuple(let items):
      let strings = items.compactMap(\.string)
      return strings.count == items.count ? strings : nil
    default: return nil
    }
  }

  public var tensorsByName: [String: Tensor]? {
    guard case .dict(let entries) = self else { return nil }
    var tensors: [String: Tensor] = [:]
    for (key, value) in entries {
      guard let name = key.string, let tensor = value.tensor else { return nil }
      tensors[name] = tensor
    }
    return tensors
  }

  /// What the value is, for messages: "dict of 3 entries", "tensor [2, 3] float32", "namespace".
  public var summary: String {
    switch self {
    case .none: "None"
    case .bool(let value): "\(value)"
    case .int(let value): "\(value)"
    case .bigInt: "a big integer"
    case .float(let value): "\(value)"
    case .string(let text): "'\(text.prefix(40))'"
    case .bytes(let bytes): "\(bytes.count) bytes"
    case .list(let items): "list of \(items.count)"
    case .tuple(let items): "tuple of \(items.count)"
    case .set(let items): "set of \(items.count)"
    case .dict(let entries): "dict of \(entries.count) entries"
    case .tensor(let tensor): "tensor \(tensor.shape) \(tensor.dtype)"
    case .namespace(let attributes): "namespace of \(attributes.count) attributes"
    }
  }
}
