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

/// One optimization step's losses, by term name, and the total.
public struct StepLosses: Sendable {
  public var total: Double
  public var terms: [(name: String, value: Double)]
}

/// The parameter groups of the reference recipes: backbone, Deformable DETR's offset projections, the rest.
func parameterGroups(of detector: any Detector, recipe: TrainingRecipe) -> [ParameterGroup] {
  var backbone: [(name: String, tensor: Tensor)] = []
  var offsets: [(name: String, tensor: Tensor)] = []
  var rest: [(name: String, tensor: Tensor)] = []
  for (name, tensor) in detector.trainableParameters() {
    if name.hasPrefix("backbone.0") {
      backbone.append((name, tensor))
    } else if name.contains("reference_points") || name.contains("sampling_offsets") {
      offsets.append((name, tensor))
    } else {
      rest.append((name, tensor))
    }
  }
  var groups = [ParameterGroup(parameters: rest, learningRate: recipe.learningRate, weightDecay: recipe.weightDecay)]
  if !offsets.isEmpty {
    groups.append(
      ParameterGroup(
        parameters: offsets, learningRate: recipe.learningRate * recipe.offsetLearningRateFactor, weightDecay: recipe.weightDecay))
  }
  if !backbone.isEmpty && recipe.backboneLearningRate > 0 {
    groups.append(ParameterGroup(parameters: backbone, learningRate: recipe.backboneLearningRate, weightDecay: recipe.weightDecay))
  }
  return groups
}

/// The targets of a batch as the criterion takes them.
func matchTargets(_ batch: DetectionBatch) -> [MatchTarget] {
  batch.targets.map { target in
    MatchTarget(
      labels: Tensor(target.labels, shape: [target.labels.count]),
      boxes: Tensor(target.boxes.flatMap { $0.map(Float.init) }, shape: [target.boxes.count, 4]))
  }
}

/// Forward, loss, backward, clipping and the optimizer step for one batch. Throws before the
/// optimizer step when a loss term is not finite, so the weights stay as they were.
func trainingStep(
  detector: any Detector, criterion: SetCriterion, optimizer: AdamW, batch: DetectionBatch, clipNorm: Double, step: Int
) throws -> StepLosses {
  let output = detector(images: batch.images, paddingMask: batch.paddingMask)
  let loss: SetLoss
  do {
    loss = try criterion(
      output.final, auxiliary: detector.usesAuxiliaryLoss ? output.auxiliary : [], encoder: output.encoder, targets: matchTargets(batch))
  } catch LinearAssignment.Failure.invalidEntries {
    // Non-finite predictions make the matching cost non-finite before any loss is computed.
    throw NonFiniteLossError(step: step, term: "matching cost (the predictions are not finite)", value: .nan)
  }
  let terms = loss.terms.map { (name: $0.name, value: $0.value.item(Double.self)) }
  for term in terms where !term.value.isFinite {
    throw NonFiniteLossError(step: step, term: term.name, value: term.value)
  }
  optimizer.zeroGrad()
  loss.total.backward()
  if clipNorm > 0 {
    let norm = clipGradientNorm(optimizer.groups.flatMap { $0.parameters.map(\.tensor) }, maxNorm: clipNorm)
    if !norm.isFinite { throw NonFiniteLossError(step: step, term: "gradient norm", value: norm) }
  }
  optimizer.step()
  return StepLosses(total: loss.total.item(Double.self), terms: terms)
}
