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
    var dino = DINOConfig.small
    (dino.backbone, dino.transformer, dino.classCount, dino.denoisingQueries) = (tinyBackbone, tinyTransformer, 3, 10)
    var focus = FocusDETRConfig(dino: dino)
    (focus.cascade, focus.selfAttentionTopK, focus.foregroundRanges) = ([1.0], 16, [-1...64, 64...128, 128...99_999_999])
    var smca = SMCAConfig()
    (smca.backbone, smca.transformer, smca.classCount) = (tinyBackbone, tinyTransformer, 3)
    var smcaMultiScale = smca
    smcaMultiScale.encoder = .depthwiseMultiScale
    var smcaPaper = smca
    (smcaPaper.encoder, smcaPaper.encoderLayout) = (.attentionMultiScale, [.multiScale])
    // SD-DETR at stride 16 (dilated last stage), so that the 64-pixel images have more cells than queries.
    var sdDETR = SDDETRConfig.small
    (sdDETR.backbone, sdDETR.transformer, sdDETR.classCount, sdDETR.miniDetectorConvLayers) = (tinyBackbone, tinyTransformer, 3, 1)
    sdDETR.backbone.dilation = true
    var sdDETRVariant = sdDETR
    (sdDETRVariant.selfAttentionConcat, sdDETRVariant.alignmentLoss, sdDETRVariant.shareKeyValue) = (.token, .iaBCE, true)
    var sdDETRTwoDecoders = sdDETR
    (sdDETRTwoDecoders.taskAwareQueries, sdDETRTwoDecoders.boxReference, sdDETRTwoDecoders.twoFullDecoders) = (false, .center, true)
    var retinaNet = RetinaNetConfig.small
    (retinaNet.backbone, retinaNet.channels, retinaNet.classCount, retinaNet.towerConvolutions) = (tinyBackbone, 32, 3, 1)
    var dsaRetinaNet = retinaNet
    (dsaRetinaNet.attentionLevels, dsaRetinaNet.objectConfidence) = ([3, 4, 5, 6, 7], true)
    var torchvisionRetinaNet = RetinaNetConfig.r50Torchvision
    (torchvisionRetinaNet.backbone, torchvisionRetinaNet.channels, torchvisionRetinaNet.classCount) = (tinyBackbone, 32, 3)
    (torchvisionRetinaNet.towerConvolutions, torchvisionRetinaNet.boxLoss) = (1, .generalizedIoU)
    return [
      try! RetinaNetModel(config: retinaNet), try! RetinaNetModel(config: dsaRetinaNet, kind: .dsaRetinaNet),
      try! RetinaNetModel(config: torchvisionRetinaNet),
      DETRModel(config: detr), ConditionalDETRModel(config: conditional), DeformableDETRModel(config: deformable),
      DeformableDETRModel(config: twoStage), DINOModel(config: dino), try! FocusDETRModel(config: focus), try! SMCAModel(config: smca),
      try! SMCAMultiScaleModel(config: smcaMultiScale), try! SMCAPaperMultiScaleModel(config: smcaPaper), try! SDDETRModel(config: sdDETR),
      try! SDDETRModel(config: sdDETRVariant), try! SDDETRModel(config: sdDETRTwoDecoders),
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
    let detectors = withSeededGenerator(0) { Self.detectors() }
    let batch = Self.batch()
    for detector in detectors {
      // The denoising noise drawn once, so that the batch is the same problem at every step.
      let targets = batch.detectorBatch.targets
      let denoising = ContrastiveDenoising(queryCount: 10, labelNoiseRatio: 0.5, boxNoiseScale: 1, classCount: 3)
      let noised = denoising.noised(targets, groups: denoising.groups(for: targets)!)
      (detector as? DINOModel)?.denoisingNoiseOverride = { _, _ in noised }
      (detector as? FocusDETRModel)?.denoisingNoiseOverride = { _, _ in noised }
      var recipe = TrainingRecipe.reference(for: detector.kind)
      recipe.learningRate = 1e-3
      let optimizer = AdamW(groups: parameterGroups(of: detector, recipe: recipe))
      var losses: [Double] = []
      // DINO and Focus-DETR start their seven heads equal (detrex deep-copies one) and answer their
      // denoising queries too: their loss falls more slowly at first (10% takes about 30 steps).
      let steps = detector is DINOModel || detector is FocusDETRModel ? 40 : 20
      for step in 0..<steps {
        losses.append(try trainingStep(detector: detector, optimizer: optimizer, batch: batch, clipNorm: 0.1, step: step).total)
      }
      let lastThree = losses.suffix(3).reduce(0, +) / 3
      #expect(
        lastThree < losses.first! * 0.9,
        "\(type(of: detector)), two-stage \((detector as? DeformableDETRModel)?.config.twoStage ?? false): \(losses)")
      if let focus = detector as? FocusDETRModel {
        let output = focus(batch.detectorBatch)
        #expect(output.updatedTokens.count == 1 && output.updatedTokens[0].allSatisfy { $0 < output.levels.tokenCount })
      }
    }
  }

  @Test func aNonFiniteLossStopsBeforeTheWeightsChange() throws {
    let detector = withSeededGenerator(0) { Self.detectors().first { $0.kind == .detr }! }
    let optimizer = AdamW(groups: parameterGroups(of: detector, recipe: .reference(for: .detr)))
    var batch = Self.batch()
    batch.images = batch.images * Double.nan
    let before = detector.parameters().map { $0.clone() }
    #expect {
      try trainingStep(detector: detector, optimizer: optimizer, batch: batch, clipNorm: 0.1, step: 7)
    } throws: {
      let text = "\($0)"
      return text.contains("step 7") && text.contains("loss term 'matching cost") && text.contains("last good checkpoint")
    }
    for (a, b) in zip(before, detector.parameters()) { expectClose(b, a, relative: 0, absolute: 0, "unchanged") }
  }

  @Test func retinaNetsRecipeWarmsUpAndDropsTwice() {
    let recipe = TrainingRecipe.reference(for: .dsaRetinaNet)
    #expect(recipe.optimizer == .sgd && recipe.momentum == 0.9 && recipe.learningRate == 0.01)
    #expect(abs(recipe.learningRateFactor(epoch: 0, step: 0) - 0.001) < 1e-12)
    #expect(abs(recipe.learningRateFactor(epoch: 0, step: 250) - (0.001 + 0.999 * 0.5)) < 1e-12)
    #expect(recipe.learningRateFactor(epoch: 7, step: 10_000) == 1)
    #expect(abs(recipe.learningRateFactor(epoch: 8, step: 10_000) - 0.1) < 1e-12)
    #expect(abs(recipe.learningRateFactor(epoch: 11, step: 10_000) - 0.01) < 1e-12)
    // Runs recorded before the fields existed read as AdamW without warm-up.
    var json = try! JSONSerialization.jsonObject(with: JSONEncoder().encode(TrainingRecipe.reference(for: .detr))) as! [String: Any]
    for key in ["optimizer", "momentum", "warmup_steps", "warmup_start_factor"] { json[key] = nil }
    let old = try! JSONDecoder().decode(TrainingRecipe.self, from: JSONSerialization.data(withJSONObject: json))
    #expect(old == TrainingRecipe.reference(for: .detr))
  }

  @Test func parameterGroupsFollowTheReferenceRecipes() {
    let detector = withSeededGenerator(0) { Self.detectors().first { $0.kind == .deformableDETR }! }
    let groups = parameterGroups(of: detector, recipe: .reference(for: .deformableDETR))
    #expect(groups.map(\.learningRate) == [2e-4, 2e-5, 2e-5])
    #expect(groups[1].parameters.allSatisfy { $0.name.contains("sampling_offsets") || $0.name.contains("reference_points") })
    #expect(groups[2].parameters.allSatisfy { $0.name.hasPrefix("backbone.0") })
  }

  @Test func dinoTrainsItsNormsWithoutWeightDecayAndItsBackboneSlower() {
    var config = DINOConfig.small
    config.classCount = 3
    let detector = withSeededGenerator(0) { DINOModel(config: config) }
    let groups = parameterGroups(of: detector, recipe: .reference(for: .dino))
    // The small preset trains its backbone's batch norm (frozen_batch_norm false): its norms join the
    // backbone's rate without weight decay, as detrex's norm rule puts every norm.
    #expect(groups.map(\.learningRate) == [1e-4, 1e-4, 1e-5, 1e-5])
    #expect(groups.map(\.weightDecay) == [1e-4, 0, 1e-4, 0])
    let names = groups.map { Set($0.parameters.map(\.name)) }
    #expect(names[1].contains("transformer.encoder.layers.0.norms.0.weight") && names[1].contains("neck.convs.0.norm.bias"))
    #expect(names[0].contains("transformer.tgt_embed.weight") && names[0].contains("label_enc.weight"))
    #expect(names[2].contains("backbone.conv1.weight") && names[2].contains("backbone.layer4.0.conv2.weight"))
    #expect(names[3].contains("backbone.bn1.weight") && names[3].contains("backbone.layer4.0.bn2.bias"))
    #expect(names.reduce(0) { $0 + $1.count } == detector.trainableParameters().count)
  }
}
