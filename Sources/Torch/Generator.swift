import CTorch

import Foundation

/// A seeded CPU random generator, independent of libtorch's default one.
///
/// Every draw that names no generator (creation such as `Tensor.rand`, the fills of parameter
/// initialization, dropout) takes its numbers from the calling thread's generator: the one made current
/// with `withCurrent(_:)`, else libtorch's default one (seeded by `Torch.manualSeed`). A scope of one's
/// own keeps a run's random numbers apart from whatever else the process draws on other threads.
public final class Generator: @unchecked Sendable {
  let handle: ctorch_generator

  public init(seed: UInt64) {
    Torch.ensureCompatibleShim()
    var out: ctorch_generator?
    guard ctorch_generator_new(seed, &out) == CTORCH_OK, let out else { opFailed("Generator", []) }
    handle = out
  }

  deinit { ctorch_generator_free(handle) }

  /// The full state as a uint8 tensor, to save in a checkpoint.
  public var state: Tensor {
    get { produce("Generator.state", []) { ctorch_generator_get_state(handle, $0) } }
    set { check(ctorch_generator_set_state(handle, newValue.handle), "Generator.setState", newValue) }
  }

  /// Runs `body` with this generator as the calling thread's generator, then restores the previous one.
  public func withCurrent<Result>(_ body: () throws -> Result) rethrows -> Result {
    let previous = Generator.current
    Generator.setCurrent(self)
    defer { Generator.setCurrent(previous) }
    return try body()
  }

  /// The calling thread's generator, or nil when its draws use libtorch's default one.
  public static var current: Generator? { Thread.current.threadDictionary[threadKey] as? Generator }

  /// The state of the calling thread's generator (`current`, else the default one): what a checkpoint
  /// saves so that a resumed run draws the same numbers.
  public static var currentState: Tensor {
    get { current?.state ?? defaultState }
    set {
      if let current { current.state = newValue } else { defaultState = newValue }
    }
  }

  private static let threadKey = "swift-detr.Generator.current"

  private static func setCurrent(_ generator: Generator?) {
    Torch.ensureCompatibleShim()
    Thread.current.threadDictionary[threadKey] = generator
    ctorch_set_thread_generator(generator?.handle)
  }

  /// The state of libtorch's default CPU generator.
  public static var defaultState: Tensor {
    get { produce("Generator.defaultState", []) { ctorch_generator_get_state(nil, $0) } }
    set { check(ctorch_generator_set_state(nil, newValue.handle), "Generator.setDefaultState", newValue) }
  }
}
