import CTorch

/// Where a tensor's memory lives.
public enum Device: Sendable, Hashable, CustomStringConvertible {
  case cpu
  case cuda(Int)

  /// Parses `cpu`, `cuda` or `cuda:N`.
  public init?(_ text: String) {
    if text == "cpu" {
      self = .cpu
    } else if text == "cuda" {
      self = .cuda(0)
    } else if text.hasPrefix("cuda:"), let index = Int(text.dropFirst(5)), index >= 0 {
      self = .cuda(index)
    } else {
      return nil
    }
  }

  var type: Int32 {
    switch self {
    case .cpu: Int32(CTORCH_CPU)
    case .cuda: Int32(CTORCH_CUDA)
    }
  }

  var index: Int32 {
    switch self {
    case .cpu: -1
    case .cuda(let index): Int32(index)
    }
  }

  public var description: String {
    switch self {
    case .cpu: "cpu"
    case .cuda(let index): "cuda:\(index)"
    }
  }
}
