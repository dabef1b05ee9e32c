import Foundation
import Torch

/// Adam with decoupled weight decay (Loshchilov & Hutter), computed as PyTorch's single-tensor
/// `AdamW` (the CPU default): per parameter, `p *= 1 - lr * wd`, then the bias-corrected Adam step.
/// State slots: `exp_avg`, `exp_avg_sq`, `step`.
public final class AdamW: Optimizer {
  public var groups: [ParameterGroup]
  public let beta1: Double
  public let beta2: Double
  public let epsilon: Double
  private var store = SlotStore()

  public init(groups: [ParameterGroup], beta1: Double = 0.9, beta2: Double = 0.999, epsilon: Double = 1e-8) {
    self.groups = groups
    self.beta1 = beta1
    self.beta2 = beta2
    self.epsilon = epsilon
    store.checkNames(groups)
  }

  /// One group holding `parameters`.
  public convenience init(parameters: [(name: String, tensor: Tensor)], learningRate: Double = 1e-3, weightDecay: Double = 1e-2) {
    self.init(groups: [ParameterGroup(parameters: parameters, learningRate: learningRate, weightDecay: weightDecay)])
  }

  public func step() {
    withNoGrad {
      for group in groups {
        for (name, parameter) in group.parameters {
          guard let gradient = parameter.grad else { continue }
          let average = slot("\(name).exp_avg", like: parameter)
          let squares = slot("\(name).exp_avg_sq", like: parameter)
          let step = (store.slots["\(name).step"]?.item(Double.self) ?? 0) + 1
          store.slots["\(name).step"] = Tensor(scalar: Float(step))

          if group.weightDecay != 0 { parameter *= 1 - group.learningRate * group.weightDecay }
          average.interpolate(toward: gradient, weight: 1 - beta1)
          squares *= beta2
          squares.addProduct(gradient, gradient, scaledBy: 1 - beta2)
          let biasCorrection1 = 1 - Foundation.pow(beta1, step)
          let biasCorrection2 = 1 - Foundation.pow(beta2, step)
          let stepSize = group.learningRate / biasCorrection1
          let denominator = squares.sqrt() / Foundation.sqrt(biasCorrection2)
          denominator += epsilon
          parameter.addQuotient(average, denominator, scaledBy: -stepSize)
        }
      }
    }
  }

  private func slot(_ key: String, like parameter: Tensor) -> Tensor {
    if let existing = store.slots[key] { return existing }
    let fresh = parameter.zerosLike()
    store.slots[key] = fresh
    return fresh
  }

  public func stateDict() -> [String: Tensor] { store.slots }

  public func load(stateDict: [String: Tensor]) throws {
    try store.load(stateDict, groups: groups, slotNames: ["exp_avg", "exp_avg_sq", "step"])
  }
}
