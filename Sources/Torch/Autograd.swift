import CTorch

/// Autograd: gradients of scalar results with respect to tensors that require them.
extension Tensor {
  /// Whether operations on this tensor are recorded for differentiation. Set it on leaves.
  public var requiresGrad: Bool {
    get { ctorch_tensor_requires_grad(handle) }
    set { check(ctorch_set_requires_grad(handle, newValue), "requires_grad_", self) }
  }

  /// Marks the tensor as requiring gradients and returns it.
  @discardableResult
  public func requiringGrad(_ flag: Bool = true) -> Tensor {
    requiresGrad = flag
    return self
  }

  /// Whether this tensor was created by the user rather than by a recorded op.
  public var isLeaf: Bool { ctorch_tensor_is_leaf(handle) }

  /// The accumulated gradient, or nil before any backward pass reached this tensor. Setting nil clears it.
  public var grad: Tensor? {
    get {
      var out: ctorch_tensor?
      check(ctorch_grad(handle, &out), "grad", self)
      return out.map(Tensor.init(handle:))
    }
    set { check(withOptionalHandle(newValue) { ctorch_set_grad(handle, $0) }, "set_grad", self) }
  }

  /// Computes gradients of this tensor with respect to the leaves that require them, adding to their `grad`.
  /// `gradient` is needed unless the tensor has one element.
  public func backward(gradient: Tensor? = nil, retainGraph: Bool = false, createGraph: Bool = false) {
    let status = withOptionalHandle(gradient) { ctorch_backward(handle, $0, retainGraph, createGraph) }
    if status != CTORCH_OK { opFailed("backward", [self] + (gradient.map { [$0] } ?? [])) }
  }

  /// The same values, cut from the autograd graph (shares storage).
  public func detached() -> Tensor { unary(Int32(CTORCH_DETACH), "detach") }
}

/// Whether ops are being recorded for autograd on this thread.
public var isGradEnabled: Bool { ctorch_grad_enabled() }

/// Runs body with autograd recording off on this thread, restoring the previous mode after.
public func withNoGrad<Result>(_ body: () throws -> Result) rethrows -> Result {
  let previous = ctorch_grad_enabled()
  ctorch_set_grad_enabled(false)
  defer { ctorch_set_grad_enabled(previous) }
  return try body()
}

/// Runs body with autograd recording on, e.g. inside a `withNoGrad` scope.
public func withGrad<Result>(_ body: () throws -> Result) rethrows -> Result {
  let previous = ctorch_grad_enabled()
  ctorch_set_grad_enabled(true)
  defer { ctorch_set_grad_enabled(previous) }
  return try body()
}

/// Runs body in libtorch's inference mode on this thread: no autograd bookkeeping at all (faster
/// than `withNoGrad`). Tensors created inside cannot be used later in recorded ops.
public func withInferenceMode<Result>(_ body: () throws -> Result) rethrows -> Result {
  var guardHandle: ctorch_guard?
  guard ctorch_inference_mode_enter(&guardHandle) == CTORCH_OK, let guardHandle else { opFailed("inferenceMode", []) }
  defer { ctorch_guard_free(guardHandle) }
  return try body()
}

/// Whether this thread is inside `withInferenceMode`.
public var isInferenceMode: Bool { ctorch_is_inference_mode() }
