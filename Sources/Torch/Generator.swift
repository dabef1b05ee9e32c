import CTorch

/// A seeded CPU random generator, independent of libtorch's default one.
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

  /// The state of libtorch's default CPU generator.
  public static var defaultState: Tensor {
    get { produce("Generator.defaultState", []) { ctorch_generator_get_state(nil, $0) } }
    set { check(ctorch_generator_set_state(nil, newValue.handle), "Generator.setDefaultState", newValue) }
  }
}
