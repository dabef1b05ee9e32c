import Detection
import Foundation
import Torch
import TorchNN

/// The detector families, as the command line names them.
public enum ModelKind: String, CaseIterable, Codable, Sendable {
  case detr = "detr"
  case conditionalDETR = "conditional-detr"
  case deformableDETR = "deformable-detr"

  /// Preset names of this family.
  public var presets: [String] {
    switch self {
    case .detr: ["r50", "r101", "small"]
    case .conditionalDETR: ["r50", "small"]
    case .deformableDETR: ["r50", "r50-single-scale", "r50-box-refinement", "r50-two-stage", "small"]
    }
  }
}

/// What every detector offers: predictions for a padded batch, and how to turn them into detections.
public protocol Detector: Module {
  var kind: ModelKind { get }
  var postProcessing: PostProcessing { get }
  /// The architecture config as JSON (the family's Codable config).
  func encodedConfig() throws -> Data
  /// The family's set criterion with its configured costs and weights.
  func makeCriterion() -> SetCriterion
  /// Whether to train the auxiliary decoder-layer losses.
  var usesAuxiliaryLoss: Bool { get }
  /// `images [batch, 3, H, W]` normalized, `paddingMask [batch, H, W]` true on padding.
  func callAsFunction(images: Tensor, paddingMask: Tensor) -> DetectorOutput
}

extension SetLossSettings {
  /// The criterion these settings describe, with the given classification loss and matching cost.
  func criterion(classification: SetCriterion.Classification, cost: ClassificationCost) -> SetCriterion {
    SetCriterion(
      matcher: HungarianMatcher(classWeight: classCost, boxWeight: boxCost, giouWeight: giouCost, classificationCost: cost),
      classification: classification, classWeight: classLossWeight, boxWeight: boxLossWeight, giouWeight: giouLossWeight)
  }
}

extension DETRModel: Detector {
  public var kind: ModelKind { .detr }
  public var postProcessing: PostProcessing { .softmax }
  public var usesAuxiliaryLoss: Bool { config.loss.auxiliaryLoss }
  public func encodedConfig() throws -> Data { try JSONEncoder().encode(config) }
  public func makeCriterion() -> SetCriterion {
    config.loss.criterion(classification: .crossEntropy(noObjectWeight: config.noObjectWeight), cost: .softmax)
  }
}

extension ConditionalDETRModel: Detector {
  public var kind: ModelKind { .conditionalDETR }
  public var postProcessing: PostProcessing { .sigmoidTopK(100) }
  public var usesAuxiliaryLoss: Bool { config.loss.auxiliaryLoss }
  public func encodedConfig() throws -> Data { try JSONEncoder().encode(config) }
  public func makeCriterion() -> SetCriterion {
    config.loss.criterion(classification: .focal(alpha: config.focalAlpha, gamma: 2), cost: .focal(alpha: config.focalAlpha, gamma: 2))
  }
}

extension DeformableDETRModel: Detector {
  public var kind: ModelKind { .deformableDETR }
  public var postProcessing: PostProcessing { .sigmoidTopK(100) }
  public var usesAuxiliaryLoss: Bool { config.loss.auxiliaryLoss }
  public func encodedConfig() throws -> Data { try JSONEncoder().encode(config) }
  public func makeCriterion() -> SetCriterion {
    config.loss.criterion(classification: .focal(alpha: config.focalAlpha, gamma: 2), cost: .focal(alpha: config.focalAlpha, gamma: 2))
  }
}

/// Builds a detector of a kind from a preset or from its config JSON.
public enum DetectorFactory {
  public static func make(kind: ModelKind, preset: String) throws -> any Detector {
    switch (kind, preset) {
    case (.detr, "r50"): return DETRModel(config: .r50)
    case (.detr, "r101"): return DETRModel(config: .r101)
    case (.detr, "small"): return DETRModel(config: .small)
    case (.conditionalDETR, "r50"): return ConditionalDETRModel(config: .r50)
    case (.conditionalDETR, "small"): return ConditionalDETRModel(config: .small)
    case (.deformableDETR, "r50"): return DeformableDETRModel(config: .r50)
    case (.deformableDETR, "r50-single-scale"): return DeformableDETRModel(config: .r50SingleScale)
    case (.deformableDETR, "r50-box-refinement"): return DeformableDETRModel(config: .r50BoxRefinement)
    case (.deformableDETR, "r50-two-stage"): return DeformableDETRModel(config: .r50TwoStage)
    case (.deformableDETR, "small"): return DeformableDETRModel(config: .small)
    default:
      throw CheckpointError(path: preset, problem: "is not a preset of \(kind.rawValue); presets: \(kind.presets.joined(separator: ", "))")
    }
  }

  public static func make(kind: ModelKind, configJSON: Data) throws -> any Detector {
    let decoder = JSONDecoder()
    switch kind {
    case .detr: return DETRModel(config: try decoder.decode(DETRConfig.self, from: configJSON))
    case .conditionalDETR: return ConditionalDETRModel(config: try decoder.decode(ConditionalDETRConfig.self, from: configJSON))
    case .deformableDETR: return DeformableDETRModel(config: try decoder.decode(DeformableDETRConfig.self, from: configJSON))
    }
  }
}
