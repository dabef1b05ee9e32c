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

  /// Whether this is a GPU.
  public var isCUDA: Bool {
    if case .cuda = self { return true }
    return false
  }

  /// The best device this process has: the first GPU when libtorch has CUDA and sees one, else the CPU.
  public static var preferred: Device { Torch.isCUDAAvailable ? .cuda(0) : .cpu }

  /// Checks that libtorch can use this device, with an error that says what to do when it cannot.
  public func checkAvailable() throws {
    guard case .cuda(let index) = self else { return }
    let count = Torch.cudaDeviceCount
    if count == 0 {
      throw DeviceError(
        message: "device \(self): this libtorch has no CUDA or sees no GPU (\(Torch.libtorchVersion)); use --device cpu, "
          + "or build the shim against a CUDA libtorch (README, \"On a GPU machine\")")
    }
    if index >= count {
      throw DeviceError(message: "device \(self): libtorch sees \(count) GPU\(count == 1 ? "" : "s") (cuda:0\(count > 1 ? "...cuda:\(count - 1)" : ""))")
    }
  }

  /// Waits for the work queued on this device (a GPU runs ops asynchronously); nothing on the CPU.
  public func synchronize() {
    if case .cuda(let index) = self { ctorch_cuda_synchronize(Int32(index)) }
  }
}

/// A device this process cannot use, with what to do about it.
public struct DeviceError: Error, CustomStringConvertible, Sendable {
  public let message: String
  public var description: String { message }
}
