import Foundation
import Torch
import TorchNN

/// An exponential moving average of a model's weights, as detrex's and MMDetection's EMA hooks keep:
/// after every optimizer step, each floating-point parameter and buffer w updates its average
///
///     ema ← decay · ema + (1 − decay) · w
///
/// and integer buffers are copied. The average starts equal to the weights. It is evaluated and
/// checkpointed beside the raw weights (`ema.safetensors` in each checkpoint folder, restored exactly
/// on resume) and never feeds back into training.
public final class WeightsEMA {
  public let decay: Double
  /// The averages, under the module's state-dict keys (one key per tensor; tied weights once).
  public private(set) var state: [String: Tensor]

  public init(of module: Module, decay: Double) {
    precondition(decay > 0 && decay < 1, "WeightsEMA: decay must lie in (0, 1)")
    self.decay = decay
    var seen = Set<ObjectIdentifier>()
    var state: [String: Tensor] = [:]
    withNoGrad {
      for (key, tensor) in module.stateDict() where seen.insert(ObjectIdentifier(tensor)).inserted {
        state[key] = tensor.detached().clone()
      }
    }
    self.state = state
  }

  /// One step of the average toward the module's current weights.
  public func update(from module: Module) {
    withNoGrad {
      for (key, tensor) in module.stateDict() {
        guard let average = state[key] else { continue }
        if tensor.dtype.isFloatingPoint {
          average.interpolate(toward: tensor.detached(), weight: 1 - decay)
        } else {
          average.copy(from: tensor)
        }
      }
    }
  }

  /// Replaces the averages with saved ones (a checkpoint's `ema.safetensors`); every key must be there.
  public func load(_ tensors: [String: Tensor], source: String) throws {
    let missing = state.keys.filter { tensors[$0] == nil }.sorted()
    guard missing.isEmpty else {
      throw TrainingError("\(source) lacks the averages of \(missing.prefix(5).joined(separator: ", ")); it is not this model's EMA")
    }
    withNoGrad {
      for (key, average) in state {
        let saved = tensors[key]!
        if saved.shape == average.shape { average.copy(from: saved) }
      }
    }
  }

  /// Runs `body` with the averages in `module`'s weights, then puts the raw weights back exactly
  /// (in place: optimizers keep their references).
  public func withAveragedWeights<Result>(in module: Module, _ body: () throws -> Result) throws -> Result {
    var saved: [String: Tensor] = [:]
    withNoGrad {
      for (key, tensor) in module.stateDict() where state[key] != nil { saved[key] = tensor.detached().clone() }
    }
    try module.load(stateDict: state, strict: false)
    defer { _ = try? module.load(stateDict: saved, strict: false) }
    return try body()
  }
}

/// A training failure with a message naming the culprit.
public struct TrainingError: Error, CustomStringConvertible, Sendable {
  public let description: String
  public init(_ description: String) { self.description = description }
}
