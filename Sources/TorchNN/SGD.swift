import Torch

/// Stochastic gradient descent with optional momentum, dampening, Nesterov and L2 weight decay,
/// computed as PyTorch's single-tensor `SGD`. State slot: `momentum_buffer`.
public final class SGD: Optimizer {
  public var groups: [ParameterGroup]
  public let momentum: Double
  public let dampening: Double
  public let nesterov: Bool
  private var store = SlotStore()

  public init(groups: [ParameterGroup], momentum: Double = 0, dampening: Double = 0, nesterov: Bool = false) {
    precondition(!nesterov || (momentum > 0 && dampening == 0), "Nesterov momentum needs momentum > 0 and no dampening")
    self.groups = groups
    self.momentum = momentum
    self.dampening = dampening
    self.nesterov = nesterov
    store.checkNames(groups)
  }

  public func step() {
    withNoGrad {
      for group in groups {
        for (name, parameter) in group.parameters {
          guard var direction = parameter.grad else { continue }
          if group.weightDecay != 0 { direction = direction + parameter * group.weightDecay }
          if momentum != 0 {
            let key = "\(name).momentum_buffer"
            let buffer: Tensor
            if let existing = store.slots[key] {
              buffer = existing
              buffer *= momentum
              buffer.add(direction, scaledBy: 1 - dampening)
            } else {
              buffer = direction.clone()
              store.slots[key] = buffer
            }
            direction = nesterov ? direction + buffer * momentum : buffer
          }
          parameter.add(direction, scaledBy: -group.learningRate)
        }
      }
    }
  }

  public func stateDict() -> [String: Tensor] { store.slots }

  public func load(stateDict: [String: Tensor]) throws {
    try store.load(stateDict, groups: groups, slotNames: ["momentum_buffer"])
  }
}
