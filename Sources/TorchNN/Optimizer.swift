import Torch

/// Parameters that share a learning rate and weight decay (PyTorch's param groups).
public struct ParameterGroup {
  /// Parameters with unique names (the names key the optimizer state).
  public var parameters: [(name: String, tensor: Tensor)]
  public var learningRate: Double
  public var weightDecay: Double

  public init(parameters: [(name: String, tensor: Tensor)], learningRate: Double, weightDecay: Double = 0) {
    self.parameters = parameters
    self.learningRate = learningRate
    self.weightDecay = weightDecay
  }
}

/// Why optimizer state could not be restored.
public struct OptimizerStateError: Error, CustomStringConvertible, Sendable {
  public let problem: String
  public var description: String { "optimizer state: \(problem)" }
}

/// Updates parameters from their gradients. State is a flat map of named tensors, so it can be saved
/// to safetensors and restored to continue exactly where training stopped.
public protocol Optimizer: AnyObject {
  var groups: [ParameterGroup] { get set }
  /// Applies one update to every parameter that has a gradient.
  func step()
  /// Named tensors holding everything needed to continue (keys `<parameter name>.<slot>`).
  func stateDict() -> [String: Tensor]
  func load(stateDict: [String: Tensor]) throws
}

extension Optimizer {
  /// Clears every parameter's gradient.
  public func zeroGrad() {
    for group in groups { for (_, parameter) in group.parameters { parameter.grad = nil } }
  }

  /// Sets each group's learning rate, in group order (schedules compute them).
  public func setLearningRates(_ rates: [Double]) {
    precondition(rates.count == groups.count, "one learning rate per group: \(groups.count) groups, \(rates.count) rates")
    for index in groups.indices { groups[index].learningRate = rates[index] }
  }
}

/// Shared storage of per-parameter state slots.
struct SlotStore {
  var slots: [String: Tensor] = [:]

  func checkNames(_ groups: [ParameterGroup]) {
    var seen = Set<String>()
    for group in groups {
      for (name, _) in group.parameters {
        precondition(seen.insert(name).inserted, "parameter name '\(name)' appears twice in the optimizer's groups")
      }
    }
  }

  /// Replaces the slots with `state`, checking each against the parameter it belongs to.
  mutating func load(_ state: [String: Tensor], groups: [ParameterGroup], slotNames: Set<String>) throws {
    let shapes = Dictionary(uniqueKeysWithValues: groups.flatMap(\.parameters).map { ($0.name, $0.tensor.shape) })
    let devices = Dictionary(uniqueKeysWithValues: groups.flatMap(\.parameters).map { ($0.name, $0.tensor.device) })
    var loaded: [String: Tensor] = [:]
    for (key, tensor) in state {
      guard let dot = key.lastIndex(of: "."), slotNames.contains(String(key[key.index(after: dot)...])) else {
        throw OptimizerStateError(problem: "unexpected key '\(key)' (slots are \(slotNames.sorted().joined(separator: ", ")))")
      }
      let name = String(key[..<dot])
      let slot = String(key[key.index(after: dot)...])
      guard let shape = shapes[name] else {
        throw OptimizerStateError(problem: "key '\(key)' names parameter '\(name)', which this optimizer does not hold")
      }
      if slot != "step" && tensor.shape != shape {
        throw OptimizerStateError(problem: "key '\(key)' has shape \(tensor.shape) but parameter '\(name)' has \(shape)")
      }
      // On the parameter's device (a checkpoint is written from the CPU whatever device trained it);
      // the step count stays on the CPU, where the update reads it.
      loaded[key] = slot == "step" ? tensor.to(device: .cpu, copy: true) : tensor.to(device: devices[name] ?? .cpu, copy: true)
    }
    slots = loaded
  }
}
