import COCO
import Detection
import Detectors
import Foundation
import Torch
import TorchNN

/// A loss term that stopped being finite; names it so the user knows what went wrong.
public struct NonFiniteLossError: Error, CustomStringConvertible, Sendable {
  public let step: Int
  public let term: String
  public let value: Double
  public var description: String {
    "step \(step): loss term '\(term)' is \(value); training stopped and the last good checkpoint is kept. Lower the learning rate or check the data."
  }
}

/// One optimization step's losses, by term name, and the total (averaged over the ranks of a
/// data-parallel run), and the images the step trained on (on all ranks).
public struct StepLosses: Sendable {
  public var total: Double
  public var terms: [(name: String, value: Double)]
  public var images: Int
}

/// The optimizer's parameter groups: each trainable parameter goes to the group of the rate and
/// weight decay that the family's rules give it, the rates taken from the recipe.
func parameterGroups(of detector: any Detector, recipe: TrainingRecipe) -> [ParameterGroup] {
  var groups: [(rank: Int, group: ParameterGroup)] = []
  var groupIndex: [String: Int] = [:]
  for (name, tensor, rate, decays) in ParameterRule.assign(detector.parameterRules, in: detector) {
    let learningRate: Double
    switch rate {
    case .base: learningRate = recipe.learningRate
    case .backbone: learningRate = recipe.backboneLearningRate
    case .samplingOffsets: learningRate = recipe.learningRate * recipe.offsetLearningRateFactor
    }
    // A backbone rate of 0 means frozen: the trainer has frozen it already, nothing reaches here.
    if rate == .backbone && learningRate == 0 { continue }
    let key = "\(rate) \(decays)"
    if let index = groupIndex[key] {
      groups[index].group.parameters.append((name, tensor))
    } else {
      groupIndex[key] = groups.count
      let rank = ParameterRule.Rate.allCases.firstIndex(of: rate)! * 2 + (decays ? 0 : 1)
      groups.append(
        (rank, ParameterGroup(parameters: [(name, tensor)], learningRate: learningRate, weightDecay: decays ? recipe.weightDecay : 0)))
    }
  }
  // The base group first: progress reports show its rate.
  return groups.sorted { $0.rank < $1.rank }.map(\.group)
}

/// Forward, loss, backward, clipping and the optimizer step for one batch. Throws before the
/// optimizer step when a loss term is not finite, so the weights stay as they were. In a data-parallel
/// run the loss terms are averaged over the ranks before the check (so all stop together), and the
/// gradients during the backward pass (c10d's reducer), before clipping.
func trainingStep(
  detector: any Detector, optimizer: any Optimizer, batch: DetectionBatch, clipNorm: Double, step: Int, dataParallel: DataParallel? = nil,
  precision: Precision = .fp32
) throws -> StepLosses {
  let loss: TrainingLosses
  do {
    // The forward pass (and the criterion, which works in float32) in the recipe's precision; the backward
    // pass outside autocast, as PyTorch's AMP does.
    loss = try precision.run(on: detector.device) { try detector.losses(for: batch.detectorBatch(for: detector)) }
  } catch LinearAssignment.Failure.invalidEntries {
    // Non-finite predictions make the matching cost non-finite before any loss is computed.
    throw NonFiniteLossError(step: step, term: "matching cost (the predictions are not finite)", value: .nan)
  }
  var terms = loss.terms.map { (name: $0.name, value: $0.value.item(Double.self)) }
  var total = loss.total.item(Double.self)
  var images = batch.targets.count
  if let dataParallel {
    let sums = try dataParallel.sum(terms.map(\.value) + [total, Double(images)])
    let ranks = Double(dataParallel.worldSize)
    for index in terms.indices { terms[index].value = sums[index] / ranks }
    total = sums[terms.count] / ranks
    images = Int(sums[terms.count + 1])
  }
  for term in terms where !term.value.isFinite {
    throw NonFiniteLossError(step: step, term: term.name, value: term.value)
  }
  optimizer.zeroGrad()
  try dataParallel?.reducer.prepareForBackward([loss.total])
  loss.total.backward()
  if clipNorm > 0 {
    let norm = clipGradientNorm(optimizer.groups.flatMap { $0.parameters.map(\.tensor) }, maxNorm: clipNorm)
    if !norm.isFinite {
      // Name the first parameter whose gradient holds a non-finite value (or say the norm itself overflowed).
      let culprit = optimizer.groups.flatMap(\.parameters).first { _, tensor in
        tensor.grad.map { $0.isFinite().logicalNot().any().item(Bool.self) } ?? false
      }
      let where_ = culprit.map { "first in \($0.name)" } ?? "every gradient finite, their norm overflowed"
      throw NonFiniteLossError(step: step, term: "gradient norm (\(where_))", value: norm)
    }
  }
  optimizer.step()
  return StepLosses(total: total, terms: terms, images: images)
}
