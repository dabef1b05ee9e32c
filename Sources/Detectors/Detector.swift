import Detection
import Foundation
import Torch
import TorchNN

/// The detector families, as the command line names them.
public enum ModelKind: String, CaseIterable, Codable, Sendable {
  case detr = "detr"
  case conditionalDETR = "conditional-detr"
  case deformableDETR = "deformable-detr"
  case dino = "dino"
  case focusDETR = "focus-detr"
  case smcaDETR = "smca-detr"
  case sdDETR = "sd-detr"
  case retinaNet = "retinanet"
  case dsaRetinaNet = "dsa-retinanet"

  /// RetinaNet or DSA-RetinaNet: the dense, anchor-based families.
  public var isRetinaNet: Bool { self == .retinaNet || self == .dsaRetinaNet }

  /// Preset names of this family.
  public var presets: [String] {
    switch self {
    case .detr: ["r50", "r101", "small"]
    case .conditionalDETR: ["r50", "small"]
    case .deformableDETR: ["r50", "r50-single-scale", "r50-box-refinement", "r50-two-stage", "small"]
    case .dino: ["r50-4scale", "r50-4scale-24ep", "r50-5scale", "small"]
    case .focusDETR: ["r50-4scale", "r50-4scale-36ep", "small"]
    case .smcaDETR: ["r50", "r50-multi-scale", "r50-paper-multi-scale", "small"]
    case .sdDETR: ["r50", "small"]
    case .retinaNet: ["r50", "r50-torchvision", "small"]
    case .dsaRetinaNet: ["r50", "r50-confidence", "small"]
    }
  }
}

/// What every detector offers (see ARCHITECTURE.md, "the detector contract"): its own training loss
/// for a batch with targets, detections for a batch, and how the optimizer treats its parameters.
/// Training, evaluation, prediction, benchmarks and checkpoints know detectors only through this.
public protocol Detector: Module {
  var kind: ModelKind { get }
  /// The architecture config as JSON (the family's Codable config).
  func encodedConfig() throws -> Data
  /// The family's forward pass and criterion on a batch with targets; the total is what to back-propagate.
  func losses(for batch: DetectorBatch) throws -> TrainingLosses
  /// Each image's detections (all candidates the family keeps, best first is not guaranteed), boxes
  /// as (x0, y0, x1, y1) in pixels of `batch.outputSizes`.
  func detect(_ batch: DetectorBatch) -> [ImageDetections]
  /// Learning-rate and weight-decay rules for the optimizer, first match wins.
  var parameterRules: [ParameterRule] { get }
  /// The multiple each padded batch's height and width are rounded up to, in training and inference
  /// alike: 32 for the dense detectors (torchvision's `size_divisible`, mmdet's `Pad size_divisor`, on
  /// which their anchor strides depend), 1 for the DETR family, whose references pad a batch only to
  /// its largest image and mask the padding.
  var inputSizeDivisor: Int { get }
}

/// A detector whose inference runs in named stages, so that a benchmark can show where the time
/// goes (on the CPU, where every op has finished when it returns).
public protocol StagedDetector: Detector {
  /// `detect(batch)`, calling `lap` with each stage's name when the stage ends.
  func detect(_ batch: DetectorBatch, lap: (String) -> Void) -> [ImageDetections]
}

extension Detector {
  public var inputSizeDivisor: Int { 1 }

  /// The ResNet of the backbone, which recipes freeze in part or whole.
  public var backboneNetwork: ResNet? { namedModules().lazy.compactMap { $0.module as? ResNet }.first }
}

/// How the optimizer treats some of a family's parameters: the family states it as data, the
/// trainer applies it. A parameter's rate comes from the first rule that selects it and sets a
/// rate, its weight decay from the first that selects it and sets one; the defaults are the base
/// rate and weight decay.
public struct ParameterRule: Sendable, Equatable {
  /// Which parameters a rule applies to: by name prefix or substring, or the normalization layers.
  public enum Selector: Sendable, Equatable {
    /// Parameters whose name starts with the string.
    case namePrefix(String)
    /// Parameters whose name contains the string.
    case nameContains(String)
    /// Parameters of normalization layers (layer, group and batch norm).
    case normalization
  }

  /// Which of the recipe's rates applies.
  public enum Rate: Sendable, Equatable, CaseIterable {
    case base
    /// The base rate times the recipe's factor for Deformable DETR's offset projections.
    case samplingOffsets
    /// The recipe's backbone rate.
    case backbone
  }

  public var selector: Selector
  public var rate: Rate?
  public var weightDecay: Bool?

  public init(_ selector: Selector, rate: Rate? = nil, weightDecay: Bool? = nil) {
    self.selector = selector
    self.rate = rate
    self.weightDecay = weightDecay
  }

  /// The rules of the DETR, Conditional and Deformable DETR references: backbone (`backbone.0`),
  /// then the sampling-offset and reference-point projections.
  public static let detrStyle: [ParameterRule] = [
    ParameterRule(.namePrefix("backbone."), rate: .backbone),
    ParameterRule(.nameContains("reference_points"), rate: .samplingOffsets),
    ParameterRule(.nameContains("sampling_offsets"), rate: .samplingOffsets),
  ]

  /// Each trainable parameter of `module` with the rate and weight decay the rules give it.
  public static func assign(_ rules: [ParameterRule], in module: Module) -> [(name: String, tensor: Tensor, rate: Rate, weightDecay: Bool)]
  {
    let normalizationModules = Set(
      module.namedModules().filter { $0.module is LayerNorm || $0.module is GroupNorm || $0.module is BatchNorm2d }.map(\.name))
    return module.trainableParameters().map { name, tensor in
      let owner = name.split(separator: ".").dropLast().joined(separator: ".")
      let selecting = rules.filter { rule in
        switch rule.selector {
        case .namePrefix(let prefix): name.hasPrefix(prefix)
        case .nameContains(let part): name.contains(part)
        case .normalization: normalizationModules.contains(owner)
        }
      }
      return (name, tensor, selecting.lazy.compactMap(\.rate).first ?? .base, selecting.lazy.compactMap(\.weightDecay).first ?? true)
    }
  }
}

/// The DETR-style families: a forward pass to a set of predictions per decoder layer, a set
/// criterion with Hungarian matching, and a post-processor. Their losses and detections follow.
public protocol SetPredictionDetector: Detector {
  var postProcessing: PostProcessing { get }
  /// The family's set criterion with its configured costs and weights.
  func makeCriterion() -> SetCriterion
  /// Whether to train the auxiliary decoder-layer losses.
  var usesAuxiliaryLoss: Bool { get }
  /// The forward pass: each decoder layer's predictions for the batch's images (SMCA-DETR also reads
  /// the images' unpadded sizes, to place its spatial priors).
  func predictions(for batch: DetectorBatch) -> DetectorOutput
}

extension SetPredictionDetector {
  public var parameterRules: [ParameterRule] { ParameterRule.detrStyle }

  public func losses(for batch: DetectorBatch) throws -> TrainingLosses {
    let output = predictions(for: batch)
    return try makeCriterion()(
      output.final, auxiliary: usesAuxiliaryLoss ? output.auxiliary : [], encoder: output.encoder, targets: batch.targets
    ).trainingLosses
  }

  public func detect(_ batch: DetectorBatch) -> [ImageDetections] {
    let output = predictions(for: batch)
    return postProcessing(logits: output.final.logits, boxes: output.final.boxes, imageSizes: batch.outputSizes)
  }
}

extension SetLossSettings {
  /// The criterion these settings describe, with the given classification loss and matching cost.
  func criterion(classification: SetCriterion.Classification, cost: ClassificationCost) -> SetCriterion {
    SetCriterion(
      matcher: HungarianMatcher(classWeight: classCost, boxWeight: boxCost, giouWeight: giouCost, classificationCost: cost),
      classification: classification, classWeight: classLossWeight, boxWeight: boxLossWeight, giouWeight: giouLossWeight)
  }
}

extension DETRModel: SetPredictionDetector {
  public func predictions(for batch: DetectorBatch) -> DetectorOutput { self(images: batch.images, paddingMask: batch.paddingMask) }
  public var kind: ModelKind { .detr }
  public var postProcessing: PostProcessing { .softmax }
  public var usesAuxiliaryLoss: Bool { config.loss.auxiliaryLoss }
  public func encodedConfig() throws -> Data { try JSONEncoder().encode(config) }
  public func makeCriterion() -> SetCriterion {
    config.loss.criterion(classification: .crossEntropy(noObjectWeight: config.noObjectWeight), cost: .softmax)
  }
}

extension ConditionalDETRModel: SetPredictionDetector {
  public func predictions(for batch: DetectorBatch) -> DetectorOutput { self(images: batch.images, paddingMask: batch.paddingMask) }
  public var kind: ModelKind { .conditionalDETR }
  public var postProcessing: PostProcessing { .sigmoidTopK(100) }
  public var usesAuxiliaryLoss: Bool { config.loss.auxiliaryLoss }
  public func encodedConfig() throws -> Data { try JSONEncoder().encode(config) }
  public func makeCriterion() -> SetCriterion {
    config.loss.criterion(classification: .focal(alpha: config.focalAlpha, gamma: 2), cost: .focal(alpha: config.focalAlpha, gamma: 2))
  }
}

extension DeformableDETRModel: SetPredictionDetector {
  public func predictions(for batch: DetectorBatch) -> DetectorOutput { self(images: batch.images, paddingMask: batch.paddingMask) }
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
    case (.dino, "r50-4scale"): return DINOModel(config: .r50FourScale)
    case (.dino, "r50-4scale-24ep"): return DINOModel(config: .r50FourScaleLongSchedule)
    case (.dino, "r50-5scale"): return DINOModel(config: .r50FiveScale)
    case (.dino, "small"): return DINOModel(config: .small)
    case (.focusDETR, "r50-4scale"): return try FocusDETRModel(config: .r50FourScale)
    case (.focusDETR, "r50-4scale-36ep"): return try FocusDETRModel(config: .r50FourScaleLongSchedule)
    case (.focusDETR, "small"): return try FocusDETRModel(config: .small)
    case (.smcaDETR, "r50"): return try SMCAModel(config: .r50)
    case (.smcaDETR, "r50-multi-scale"): return try SMCAMultiScaleModel(config: .r50MultiScale)
    case (.smcaDETR, "r50-paper-multi-scale"): return try SMCAPaperMultiScaleModel(config: .r50PaperMultiScale)
    case (.smcaDETR, "small"): return try SMCAModel(config: .small)
    case (.sdDETR, "r50"): return try SDDETRModel(config: .r50)
    case (.sdDETR, "small"): return try SDDETRModel(config: .small)
    case (.retinaNet, "r50"): return try RetinaNetModel(config: .r50)
    case (.retinaNet, "r50-torchvision"): return try RetinaNetModel(config: .r50Torchvision)
    case (.retinaNet, "small"): return try RetinaNetModel(config: .small)
    case (.dsaRetinaNet, "r50"): return try RetinaNetModel(config: .r50DSA, kind: .dsaRetinaNet)
    case (.dsaRetinaNet, "r50-confidence"): return try RetinaNetModel(config: .r50DSAConfidence, kind: .dsaRetinaNet)
    case (.dsaRetinaNet, "small"): return try RetinaNetModel(config: .smallDSA, kind: .dsaRetinaNet)
    default:
      throw CheckpointError(path: preset, problem: "is not a preset of \(kind.rawValue); presets: \(kind.presets.joined(separator: ", "))")
    }
  }

  public static func make(kind: ModelKind, configJSON: Data) throws -> any Detector {
    do {
      return try makeUnchecked(kind: kind, configJSON: configJSON)
    } catch let error as DecodingError {
      throw ConfigError(decoding: error, family: kind)
    }
  }

  static func makeUnchecked(kind: ModelKind, configJSON: Data) throws -> any Detector {
    let decoder = JSONDecoder()
    // The parts every family shares, checked before anything is built.
    if let object = try? JSONSerialization.jsonObject(with: configJSON) as? [String: Any] {
      do {
        if let part = object["transformer"] {
          try decoder.decode(TransformerSettings.self, from: JSONSerialization.data(withJSONObject: part)).validate()
        }
      } catch let error as DecodingError {
        throw ConfigError(decoding: error, family: kind, prefix: "transformer")
      }
      do {
        if let part = object["backbone"] {
          try decoder.decode(BackboneConfig.self, from: JSONSerialization.data(withJSONObject: part)).validate()
        }
      } catch let error as DecodingError {
        throw ConfigError(decoding: error, family: kind, prefix: "backbone")
      }
      if let count = object["class_count"] as? Int, !(1...100_000).contains(count) {
        throw ConfigError("class_count must be between 1 and 100000, got \(count)")
      }
    }
    switch kind {
    case .detr:
      return DETRModel(config: try decoder.decode(DETRConfig.self, from: configJSON))
    case .conditionalDETR:
      return ConditionalDETRModel(config: try decoder.decode(ConditionalDETRConfig.self, from: configJSON))
    case .deformableDETR:
      let config = try decoder.decode(DeformableDETRConfig.self, from: configJSON)
      try config.validate()
      return DeformableDETRModel(config: config)
    case .dino:
      let config = try decoder.decode(DINOConfig.self, from: configJSON)
      try config.validate()
      return DINOModel(config: config)
    case .focusDETR: return try FocusDETRModel(config: try decoder.decode(FocusDETRConfig.self, from: configJSON))
    case .smcaDETR:
      let config = try decoder.decode(SMCAConfig.self, from: configJSON)
      switch config.encoder {
      case .singleScale: return try SMCAModel(config: config)
      case .depthwiseMultiScale: return try SMCAMultiScaleModel(config: config)
      case .attentionMultiScale: return try SMCAPaperMultiScaleModel(config: config)
      }
    case .sdDETR: return try SDDETRModel(config: try decoder.decode(SDDETRConfig.self, from: configJSON))
    case .retinaNet, .dsaRetinaNet: return try RetinaNetModel(config: try decoder.decode(RetinaNetConfig.self, from: configJSON), kind: kind)
    }
  }
}
