import Torch

/// A network layer or a whole model: parameters, buffers and child modules under explicit names.
///
/// Names are registered by the subclass, in the same order and with the same names as the
/// equivalent PyTorch module, so `stateDict()` keys equal PyTorch's `state_dict()` keys
/// (`transformer.decoder.layers.3.linear1.bias`). Parameters are updated in place (by optimizers and
/// by `load(stateDict:)`), so a layer can keep them in `let` properties.
open class Module {
  private var parameterEntries: [(name: String, tensor: Tensor)] = []
  private var bufferEntries: [(name: String, tensor: Tensor, persistent: Bool)] = []
  private var childEntries: [(name: String, module: Module)] = []

  /// True in training mode (dropout active, batch norm using batch statistics).
  public private(set) var isTraining = true

  public init() {}

  /// Registers a trainable tensor; it is marked as requiring gradients.
  @discardableResult
  public func registerParameter(_ name: String, _ tensor: Tensor) -> Tensor {
    precondition(!name.contains(".") && !name.isEmpty, "parameter name '\(name)' must be non-empty and have no dots")
    tensor.requiresGrad = true
    parameterEntries.append((name, tensor))
    return tensor
  }

  /// Registers state that is saved but not trained (running statistics, frozen weights).
  /// Non-persistent buffers are not part of the state dict.
  @discardableResult
  public func registerBuffer(_ name: String, _ tensor: Tensor, persistent: Bool = true) -> Tensor {
    precondition(!name.contains(".") && !name.isEmpty, "buffer name '\(name)' must be non-empty and have no dots")
    bufferEntries.append((name, tensor, persistent))
    return tensor
  }

  /// Registers a child module whose keys are prefixed with `name.`.
  @discardableResult
  public func registerModule<M: Module>(_ name: String, _ module: M) -> M {
    precondition(!name.isEmpty, "module name must be non-empty")
    childEntries.append((name, module))
    return module
  }

  /// Registers `module` under a dotted path (`ffns.0.layers.1`), creating empty container modules
  /// for the parts not registered yet, so that a layer can take a reference layout's nesting
  /// without a class per level.
  @discardableResult
  public func registerModule<M: Module>(atPath path: String, _ module: M) -> M {
    let parts = path.split(separator: ".").map(String.init)
    precondition(!parts.isEmpty, "module path must be non-empty")
    var parent: Module = self
    for part in parts.dropLast() {
      if let existing = parent.childEntries.first(where: { $0.name == part })?.module {
        parent = existing
      } else {
        parent = parent.registerModule(part, Module())
      }
    }
    return parent.registerModule(parts.last!, module)
  }

  /// The direct children, in registration order.
  public var children: [(name: String, module: Module)] { childEntries }

  /// Every parameter with its dotted name, depth first in registration order (PyTorch's order).
  /// A parameter shared by several modules (tied weights) is listed once, under its first name.
  public func namedParameters() -> [(name: String, tensor: Tensor)] {
    var seen = Set<ObjectIdentifier>()
    return allNamedParameters().filter { seen.insert(ObjectIdentifier($0.tensor)).inserted }
  }

  private func allNamedParameters() -> [(name: String, tensor: Tensor)] {
    var result = parameterEntries.map { (name: $0.name, tensor: $0.tensor) }
    for (childName, child) in childEntries {
      result += child.allNamedParameters().map { (name: "\(childName).\($0.name)", tensor: $0.tensor) }
    }
    return result
  }

  public func parameters() -> [Tensor] { namedParameters().map(\.tensor) }

  /// Parameters that require gradients (not frozen).
  public func trainableParameters() -> [(name: String, tensor: Tensor)] { namedParameters().filter { $0.tensor.requiresGrad } }

  /// Every buffer with its dotted name; `persistentOnly` leaves out non-persistent ones.
  public func namedBuffers(persistentOnly: Bool = false) -> [(name: String, tensor: Tensor)] {
    var result = bufferEntries.filter { !persistentOnly || $0.persistent }.map { (name: $0.name, tensor: $0.tensor) }
    for (childName, child) in childEntries {
      result += child.namedBuffers(persistentOnly: persistentOnly).map { (name: "\(childName).\($0.name)", tensor: $0.tensor) }
    }
    return result
  }

  /// Every module below this one (this one first, as `""`), with dotted names.
  public func namedModules() -> [(name: String, module: Module)] {
    var result: [(name: String, module: Module)] = [("", self)]
    for (childName, child) in childEntries {
      result += child.namedModules().map { (name: $0.name.isEmpty ? childName : "\(childName).\($0.name)", module: $0.module) }
    }
    return result
  }

  /// Parameters and persistent buffers in PyTorch's `state_dict()` order: a module's own
  /// parameters, then its buffers, then each child's entries.
  public func stateDict() -> [(key: String, tensor: Tensor)] {
    var result = parameterEntries.map { (key: $0.name, tensor: $0.tensor) }
    result += bufferEntries.filter(\.persistent).map { (key: $0.name, tensor: $0.tensor) }
    for (childName, child) in childEntries {
      result += child.stateDict().map { (key: "\(childName).\($0.key)", tensor: $0.tensor) }
    }
    return result
  }

  /// Copies values from `stateDict` into this module's parameters and buffers (converting dtype).
  ///
  /// With `strict`, any missing, unexpected or misshaped key throws `StateDictError` before anything
  /// is changed. Without it, matching keys are loaded and the rest is reported. A tensor shared under
  /// several keys (tied weights) is loaded when any one of its keys is given.
  @discardableResult
  public func load(stateDict: [String: Tensor], strict: Bool = true) throws -> StateDictReport {
    let own = self.stateDict()
    var report = StateDictReport()
    let ownKeys = Set(own.map(\.key))
    report.unexpected = stateDict.keys.filter { !ownKeys.contains($0) }.sorted()
    let givenTensors = Set(own.filter { stateDict[$0.key] != nil }.map { ObjectIdentifier($0.tensor) })
    var toCopy: [(Tensor, Tensor)] = []
    for (key, tensor) in own {
      guard let value = stateDict[key] else {
        // As PyTorch's batch norm, a state dict without `num_batches_tracked` (older files, frozen batch
        // norm's layout) loads, the count staying as it is.
        if !givenTensors.contains(ObjectIdentifier(tensor)) && !key.hasSuffix("num_batches_tracked") { report.missing.append(key) }
        continue
      }
      if value.shape != tensor.shape {
        report.misshaped.append(.init(key: key, expected: tensor.shape, found: value.shape))
        continue
      }
      toCopy.append((tensor, value))
      report.loaded.append(key)
    }
    if strict && !report.isComplete {
      throw StateDictError(report: report)
    }
    withNoGrad {
      for (destination, source) in toCopy { destination.copy(from: source) }
    }
    return report
  }

  /// Converts every parameter and buffer (floating-point ones only, for a dtype) and moves them to
  /// `device`, in place: references held by layers and optimizers stay valid. Gradients are dropped.
  public func to(dtype: DType? = nil, device: Device? = nil) {
    withNoGrad {
      for tensor in parameters() + namedBuffers().map(\.tensor) {
        let target = (tensor.dtype.isFloatingPoint ? dtype : nil) ?? tensor.dtype
        if target != tensor.dtype || (device != nil && device != tensor.device) {
          tensor.grad = nil
          tensor.replaceData(with: tensor.to(dtype: target, device: device))
        }
      }
    }
  }

  /// Where the module's parameters (else its buffers) are: the device its inputs must be on. The CPU
  /// for a module that has neither.
  public var device: Device {
    parameters().first?.device ?? namedBuffers().first?.tensor.device ?? .cpu
  }

  /// Switches this module and all below it to training (true) or evaluation (false) mode.
  public func train(_ training: Bool = true) {
    for (_, module) in namedModules() {
      module.isTraining = training
      module.trainingModeDidChange()
    }
  }

  /// Evaluation mode: dropout off, batch norm on running statistics.
  public func eval() { train(false) }

  /// Stops gradients for every parameter below this module (they stay in the state dict).
  public func freeze() { for parameter in parameters() { parameter.requiresGrad = false } }

  public func unfreeze() { for parameter in parameters() { parameter.requiresGrad = true } }

  /// Clears the gradients of every parameter.
  public func zeroGrad() { for parameter in parameters() { parameter.grad = nil } }

  /// Called after `isTraining` changed; override to react.
  open func trainingModeDidChange() {}
}

/// What `Module.load(stateDict:strict:)` did.
public struct StateDictReport: Sendable, Equatable {
  public struct Mismatch: Sendable, Equatable, CustomStringConvertible {
    public let key: String
    public let expected: [Int]
    public let found: [Int]
    public var description: String { "\(key): expected shape \(expected), found \(found)" }
  }

  public var loaded: [String] = []
  public var missing: [String] = []
  public var unexpected: [String] = []
  public var misshaped: [Mismatch] = []

  public var isComplete: Bool { missing.isEmpty && unexpected.isEmpty && misshaped.isEmpty }

  /// A readable list of what did not load.
  public var summary: String { summaryNaming(atMost: .max) }

  /// What did not load, naming at most `limit` keys of each kind.
  public func summaryNaming(atMost limit: Int) -> String {
    func list(_ items: [String], separator: String) -> String {
      items.prefix(limit).joined(separator: separator) + (items.count > limit ? "\(separator)..." : "")
    }
    var lines: [String] = []
    if !missing.isEmpty { lines.append("missing keys (\(missing.count)): \(list(missing, separator: ", "))") }
    if !unexpected.isEmpty { lines.append("unexpected keys (\(unexpected.count)): \(list(unexpected, separator: ", "))") }
    if !misshaped.isEmpty {
      lines.append("keys with the wrong shape (\(misshaped.count)): \(list(misshaped.map(\.description), separator: "; "))")
    }
    return lines.isEmpty ? "all \(loaded.count) keys loaded" : lines.joined(separator: "\n")
  }
}

/// A strict state-dict load that did not match; nothing was changed.
public struct StateDictError: Error, CustomStringConvertible, Sendable {
  public let report: StateDictReport
  public var description: String {
    "the state dict does not match the module:\n\(report.summaryNaming(atMost: 8))\nUse a checkpoint of the same architecture, or load non-strictly to fine-tune."
  }
}

/// Children under the names "0", "1", ..., like PyTorch's `nn.ModuleList`.
public final class ModuleList<Element: Module>: Module, RandomAccessCollection {
  public private(set) var modules: [Element] = []

  public init(_ modules: [Element]) {
    super.init()
    for module in modules { append(module) }
  }

  public func append(_ module: Element) {
    registerModule(String(modules.count), module)
    modules.append(module)
  }

  public var startIndex: Int { modules.startIndex }
  public var endIndex: Int { modules.endIndex }
  public subscript(position: Int) -> Element { modules[position] }
}
