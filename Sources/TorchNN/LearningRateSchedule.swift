import Foundation

/// A learning-rate multiplier as a function of the optimizer step (0-based), applied to each group's base rate.
public protocol LearningRateSchedule: Sendable {
  func factor(atStep step: Int) -> Double
}

extension LearningRateSchedule {
  /// The rates for every group at `step`, from their base rates.
  public func learningRates(base: [Double], atStep step: Int) -> [Double] {
    let factor = factor(atStep: step)
    return base.map { $0 * factor }
  }
}

/// Constant rate.
public struct ConstantSchedule: LearningRateSchedule, Codable, Equatable {
  public init() {}
  public func factor(atStep step: Int) -> Double { 1 }
}

/// Multiplies by `gamma` every `stepSize` steps (PyTorch's `StepLR`; DETR drops ×0.1 once).
public struct StepSchedule: LearningRateSchedule, Codable, Equatable {
  public var stepSize: Int
  public var gamma: Double
  public init(stepSize: Int, gamma: Double = 0.1) {
    precondition(stepSize > 0, "StepSchedule needs stepSize > 0")
    self.stepSize = stepSize
    self.gamma = gamma
  }
  public func factor(atStep step: Int) -> Double { Foundation.pow(gamma, Double(step / stepSize)) }
}

/// Multiplies by `gamma` at each milestone passed (PyTorch's `MultiStepLR`).
public struct MultiStepSchedule: LearningRateSchedule, Codable, Equatable {
  public var milestones: [Int]
  public var gamma: Double
  public init(milestones: [Int], gamma: Double = 0.1) {
    self.milestones = milestones.sorted()
    self.gamma = gamma
  }
  public func factor(atStep step: Int) -> Double { Foundation.pow(gamma, Double(milestones.filter { $0 <= step }.count)) }
}

/// Cosine annealing from 1 to `minimumFactor` over `totalSteps` (then flat).
public struct CosineSchedule: LearningRateSchedule, Codable, Equatable {
  public var totalSteps: Int
  public var minimumFactor: Double
  public init(totalSteps: Int, minimumFactor: Double = 0) {
    precondition(totalSteps > 0, "CosineSchedule needs totalSteps > 0")
    self.totalSteps = totalSteps
    self.minimumFactor = minimumFactor
  }
  public func factor(atStep step: Int) -> Double {
    let progress = Double(Swift.min(step, totalSteps)) / Double(totalSteps)
    return minimumFactor + (1 - minimumFactor) * (1 + Foundation.cos(Double.pi * progress)) / 2
  }
}

/// A linear ramp from `startFactor` to 1 over `warmupSteps`, then `after` (shifted to start at 0).
public struct WarmupSchedule<After: LearningRateSchedule>: LearningRateSchedule {
  public var warmupSteps: Int
  public var startFactor: Double
  public var after: After
  public init(warmupSteps: Int, startFactor: Double = 0.001, then after: After) {
    self.warmupSteps = warmupSteps
    self.startFactor = startFactor
    self.after = after
  }
  public func factor(atStep step: Int) -> Double {
    if step < warmupSteps {
      return startFactor + (1 - startFactor) * Double(step) / Double(warmupSteps)
    }
    return after.factor(atStep: step - warmupSteps)
  }
}
