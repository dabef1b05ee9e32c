import COCO
import Detection
import Detectors
import Foundation
import Testing
import Torch
import TorchNN
import TorchTestSupport

@testable import Training

/// A few optimizer steps on one fixed batch reduce the loss, for every family.
@Suite struct TrainingStepTests {
  static let tinyBackbone = BackboneConfig(
    blocksPerStage: [1, 1, 1, 1], stemChannels: 8, stageChannels: [8, 16, 32, 64], bottleneck: false)
  static let tinyTransformer = TransformerSettings(
    hiddenDim: 32, heads: 4, encoderLayers: 1, decoderLayers: 2, feedForwardDim: 64, dropout: 0, queries: 10)

  static func detectors() -> [any Detector] {
    var detr = DETRConfig()
    (detr.backbone, detr.transformer, detr.classCount) = (tinyBackbone, tinyTransformer, 3)
    var conditional = ConditionalDETRConfig()
    (conditional.backbone, conditional.transformer, conditional.classCount) = (tinyBackbone, tinyTransformer, 3)
    var deformable = DeformableDETRConfig.small
    (deformable.backbone, deformable.transformer, deformable.classCount, deformable.featureLevels) = (tinyBackbone, tinyTransformer, 3, 3)
    var twoStage = deformable
    (twoStage.boxRefinement, twoStage.twoStage) = (true, true)
    return [
      DETRModel(config: detr), ConditionalDETRModel(config: conditional), DeformableDETRModel(config: deformable),
      DeformableDETRModel(config: twoStage),
    ]
  }

  static func batch() -> DetectionBatch {
    var random = SeededRandom(seed: 3)
    let samples = (0..<2).map { index -> TransformedSample in
      let (width, height) = (64 + 16 * index, 64)
      let pixels = (0..<(3 * width * height)).map { _ in Float(random.normal()) }
      let target = DetectionTarget(
        imageId: index, labels: [0, 2], boxes: [[0.3, 0.4, 0.2, 0.3], [0.7, 0.6, 0.3, 0.2]], originalSize: (height, width),
        size: (height, width))
      return TransformedSample(pixels: pixels, width: width, height: height, target: target)
    }
    return DetectionBatch(samples: samples)
  }

  @Test func aFewStepsReduceTheLossOfEveryFamily() throws {
    let detectors = withSeededDefaultGenerator(0) { Self.detectors() }
    let batch = Self.batch()
    for detector in detectors {
      var recipe = TrainingRecipe.reference(for: detector.kind)
      recipe.learningRate = 1e-3
      let optimizer = AdamW(groups: parameterGroups(of: detector, recipe: recipe))
      let criterion = detector.makeCriterion()
      var losses: [Double] = []
      for step in 0..<12 {
        losses.append(
          try trainingStep(detector: detector, criterion: criterion, optimizer: optimizer, batch: batch, clipNorm: 0.1, step: step).total)
      }
      let lastThree = losses.suffix(3).reduce(0, +) / 3
      #expect(
        lastThree < losses.first! * 0.9,
        "\(detector.kind), two-stage \((detector as? DeformableDETRModel)?.config.twoStage ?? false): \(losses)")
    }
  }

  @Test func aNonFiniteLossStopsBeforeTheWeightsChange() throws {
    let detector = withSeededDefaultGenerator(0) { Self.detectors()[0] }
    let optimizer = AdamW(groups: parameterGroups(of: detector, recipe: .reference(for: .detr)))
    var batch = Self.batch()
    batch.images = batch.images * Double.nan
    let before = detector.parameters().map { $0.clone() }
    #expect {
      try trainingStep(detector: detector, criterion: detector.makeCriterion(), optimizer: optimizer, batch: batch, clipNorm: 0.1, step: 7)
    } throws: {
      let text = "\($0)"
      return text.contains("step 7") && text.contains("loss term 'matching cost") && text.contains("last good checkpoint")
    }
    for (a, b) in zip(before, detector.parameters()) { expectClose(b, a, relative: 0, absolute: 0, "unchanged") }
  }

  @Test func parameterGroupsFollowTheReferenceRecipes() {
    let detector = withSeededDefaultGenerator(0) { Self.detectors()[2] }
    let groups = parameterGroups(of: detector, recipe: .reference(for: .deformableDETR))
    #expect(groups.map(\.learningRate) == [2e-4, 2e-5, 2e-5])
    #expect(groups[1].parameters.allSatisfy { $0.name.contains("sampling_offsets") || $0.name.contains("reference_points") })
    #expect(groups[2].parameters.allSatisfy { $0.name.hasPrefix("backbone.0") })
  }
}
