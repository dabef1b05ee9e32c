import Torch
import Detectors
import Foundation

/// How a detector is trained (apart from its architecture): the reference recipes as presets.
public struct TrainingRecipe: Codable, Sendable, Equatable {
  /// The optimizer.
  public enum OptimizerKind: String, Codable, Sendable, CaseIterable {
    /// AdamW (the DETR family).
    case adamW = "adamw"
    /// SGD with momentum (RetinaNet).
    case sgd
  }

  public var optimizer = OptimizerKind.adamW
  /// SGD's momentum.
  public var momentum = 0.9
  /// Steps of linear warm-up from `warmupStartFactor` × the rate to the rate (0: none).
  public var warmupSteps = 0
  public var warmupStartFactor = 0.001
  /// A second epoch after which the rate drops ×0.1 again (mmdet's steps at 8 and 11 of 12).
  public var secondLearningRateDropEpoch: Int?
  public var epochs: Int
  public var batchSize = 2
  public var learningRate: Double
  /// Learning rate of the backbone (parameters named `backbone.0...`); 0 freezes it.
  public var backboneLearningRate: Double
  /// Multiplier of the learning rate of Deformable DETR's sampling-offset and reference-point projections.
  public var offsetLearningRateFactor = 1.0
  public var weightDecay = 1e-4
  /// The epoch after which the learning rate is multiplied by 0.1.
  public var learningRateDropEpoch: Int
  /// Global gradient-norm limit (0 disables clipping).
  public var gradientClipNorm = 0.1
  /// Freeze the backbone's stem and first `frozenBackboneStages` stages, as the references do with
  /// pretrained backbones.
  public var freezeBackboneStem = true
  /// Residual stages frozen with the stem: 1 in the DETR, Conditional and Deformable DETR recipes,
  /// 0 in detrex's DINO (`freeze_at=1`).
  public var frozenBackboneStages = 1
  public var seed: UInt64 = 42
  /// The decay of an exponential moving average of the weights (`WeightsEMA`), or nil for none.
  public var emaDecay: Double?
  /// The forward pass's arithmetic: float32, or bfloat16 autocast (losses, matching and the optimizer in float32).
  public var precision = Precision.fp32

  public init(epochs: Int, learningRate: Double, backboneLearningRate: Double, learningRateDropEpoch: Int) {
    self.epochs = epochs
    self.learningRate = learningRate
    self.backboneLearningRate = backboneLearningRate
    self.learningRateDropEpoch = learningRateDropEpoch
  }

  /// The reference recipe of a family: DETR 300 epochs (drop at 200), lr 1e-4 / backbone 1e-5;
  /// Conditional DETR, SMCA-DETR and SD-DETR 50 (drop at 40), same rates; Deformable DETR 50 (drop at 40), lr 2e-4 /
  /// backbone 2e-5, offsets ×0.1; DINO (detrex) and Focus-DETR 12 (drop at 11), lr 1e-4 / backbone 1e-5, only the
  /// stem frozen, no weight decay on normalization layers (the family's parameter rules). Weight
  /// decay 1e-4, gradient clipping 0.1, batch 2 per device.
  public static func reference(for kind: ModelKind) -> TrainingRecipe {
    switch kind {
    case .detr: return TrainingRecipe(epochs: 300, learningRate: 1e-4, backboneLearningRate: 1e-5, learningRateDropEpoch: 200)
    case .conditionalDETR, .smcaDETR, .sdDETR:
      return TrainingRecipe(epochs: 50, learningRate: 1e-4, backboneLearningRate: 1e-5, learningRateDropEpoch: 40)
    case .deformableDETR:
      var recipe = TrainingRecipe(epochs: 50, learningRate: 2e-4, backboneLearningRate: 2e-5, learningRateDropEpoch: 40)
      recipe.offsetLearningRateFactor = 0.1
      return recipe
    case .dino, .focusDETR:
      var recipe = TrainingRecipe(epochs: 12, learningRate: 1e-4, backboneLearningRate: 1e-5, learningRateDropEpoch: 11)
      recipe.frozenBackboneStages = 0
      return recipe
    case .retinaNet, .dsaRetinaNet:
      var recipe = TrainingRecipe(epochs: 12, learningRate: 0.01, backboneLearningRate: 0.01, learningRateDropEpoch: 8)
      (recipe.optimizer, recipe.momentum, recipe.secondLearningRateDropEpoch) = (.sgd, 0.9, 11)
      (recipe.warmupSteps, recipe.warmupStartFactor, recipe.gradientClipNorm) = (500, 0.001, 0)
      return recipe
    }
  }

  public init(from decoder: Decoder) throws {
    let container = try decoder.container(keyedBy: CodingKeys.self)
    self.init(
      epochs: try container.decode(Int.self, forKey: .epochs), learningRate: try container.decode(Double.self, forKey: .learningRate),
      backboneLearningRate: try container.decode(Double.self, forKey: .backboneLearningRate),
      learningRateDropEpoch: try container.decode(Int.self, forKey: .learningRateDropEpoch))
    batchSize = try container.decode(Int.self, forKey: .batchSize)
    offsetLearningRateFactor = try container.decode(Double.self, forKey: .offsetLearningRateFactor)
    weightDecay = try container.decode(Double.self, forKey: .weightDecay)
    gradientClipNorm = try container.decode(Double.self, forKey: .gradientClipNorm)
    freezeBackboneStem = try container.decode(Bool.self, forKey: .freezeBackboneStem)
    // Runs written before the field existed froze one stage.
    frozenBackboneStages = try container.decodeIfPresent(Int.self, forKey: .frozenBackboneStages) ?? 1
    seed = try container.decode(UInt64.self, forKey: .seed)
    // Runs written before these fields existed used AdamW without warm-up and one drop.
    optimizer = try container.decodeIfPresent(OptimizerKind.self, forKey: .optimizer) ?? .adamW
    momentum = try container.decodeIfPresent(Double.self, forKey: .momentum) ?? 0.9
    warmupSteps = try container.decodeIfPresent(Int.self, forKey: .warmupSteps) ?? 0
    warmupStartFactor = try container.decodeIfPresent(Double.self, forKey: .warmupStartFactor) ?? 0.001
    secondLearningRateDropEpoch = try container.decodeIfPresent(Int.self, forKey: .secondLearningRateDropEpoch)
    emaDecay = try container.decodeIfPresent(Double.self, forKey: .emaDecay)
    precision = try container.decodeIfPresent(Precision.self, forKey: .precision) ?? .fp32
  }

  /// The learning-rate multiplier in `epoch` (0-based) at optimizer step `step` (0-based, counted
  /// over the whole run): ×0.1 after each drop epoch passed, times the linear warm-up's factor.
  public func learningRateFactor(epoch: Int, step: Int = .max) -> Double {
    let drops = [learningRateDropEpoch, secondLearningRateDropEpoch].compactMap { $0 }.filter { epoch >= $0 }.count
    let warmup = step < warmupSteps ? warmupStartFactor + (1 - warmupStartFactor) * Double(step) / Double(warmupSteps) : 1
    return Foundation.pow(0.1, Double(drops)) * warmup
  }

  enum CodingKeys: String, CodingKey {
    case epochs
    case batchSize = "batch_size"
    case learningRate = "learning_rate"
    case backboneLearningRate = "backbone_learning_rate"
    case offsetLearningRateFactor = "offset_learning_rate_factor"
    case weightDecay = "weight_decay"
    case learningRateDropEpoch = "learning_rate_drop_epoch"
    case gradientClipNorm = "gradient_clip_norm"
    case freezeBackboneStem = "freeze_backbone_stem"
    case frozenBackboneStages = "frozen_backbone_stages"
    case seed, optimizer, momentum
    case warmupSteps = "warmup_steps"
    case warmupStartFactor = "warmup_start_factor"
    case secondLearningRateDropEpoch = "second_learning_rate_drop_epoch"
    case emaDecay = "ema_decay"
    case precision
  }
}
