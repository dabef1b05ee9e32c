import Detection
import Foundation
import Testing
import Torch
import TorchNN
import TorchTestSupport

@testable import Detectors

/// DSA-RetinaNet equals the authors' code (chenzuge1/DSANet 70ade58, an mmdetection 2.4 fork) run on
/// the CPU (`Scripts/goldens/make_dsa_goldens.py`): a small model with DSA on P4–P7 and the
/// object-confidence output, random perturbed weights (gates 0.5), two 128×160 images.
@Suite struct DSAOfficialTests {
  static let folder = DETRTests.fixture("dsa_official")

  /// The golden model, with the fork's two quirks on (its score fusion and its IoU target's gradient).
  static func model() throws -> RetinaNetModel {
    var config = RetinaNetConfig.r50DSAConfidence
    config.backbone = BackboneConfig(blocksPerStage: [2, 2, 2, 2], stemChannels: 8, stageChannels: [8, 16, 32, 64], bottleneck: false)
    (config.channels, config.classCount) = (32, 5)
    (config.legacyScoreFusion, config.gradientThroughIoUTarget) = (true, true)
    let model = try withSeededGenerator(0) { try RetinaNetModel(config: config, kind: .dsaRetinaNet) }
    try model.load(stateDict: SafeTensors.load(contentsOf: folder.appendingPathComponent("model.safetensors")).tensors)
    model.eval()
    return model
  }

  static let imageSizes = [(height: 128, width: 160), (height: 128, width: 160)]

  static func targets(_ golden: Goldens) -> [MatchTarget] {
    let scale = Tensor([Float(160), 128, 160, 128], shape: [4])
    let boxes = Boxes.cornersToCenter(golden["gt_boxes"] / scale)
    let labels = golden["gt_labels"].to(.int64)
    return [MatchTarget(labels: labels[0..<2], boxes: boxes[0..<2]), MatchTarget(labels: labels[2..<3], boxes: boxes[2..<3])]
  }

  @Test func everyLevelsFeaturesAndOutputsEqualTheAuthorsCode() throws {
    let (model, golden) = (try Self.model(), try Goldens(Self.folder.appendingPathComponent("golden.safetensors")))
    let images = golden["images"]
    let (backbone, levels) = withInferenceMode { (model.backbone(images, stagesOut: [1, 2, 3, 4]), model(images: images)) }
    for (index, feature) in backbone.enumerated() {
      expectClose(feature, golden["C\(index + 2)"], relative: 1e-4, absolute: 1e-4, "C\(index + 2)")
    }
    for (index, level) in levels.enumerated() {
      let name = "P\(index + 3)"
      expectClose(level.features.classification, golden["\(name).cls_feat"], relative: 1e-4, absolute: 1e-4, "\(name) classification features")
      expectClose(level.features.localization, golden["\(name).reg_feat"], relative: 1e-4, absolute: 1e-4, "\(name) localization features")
      expectClose(level.logits, golden["\(name).cls_score"], relative: 1e-4, absolute: 1e-4, "\(name) logits")
      expectClose(level.deltas, golden["\(name).bbox_pred"], relative: 1e-4, absolute: 1e-4, "\(name) deltas")
      expectClose(try #require(level.confidence), golden["\(name).iou_pred"], relative: 1e-4, absolute: 1e-4, "\(name) IoU logits")
    }
    // P3 and P4 differ between the two branches (attention from P4 on); P3's pair is one tensor twice.
    expectClose(levels[0].features.classification, levels[0].features.localization, relative: 0, absolute: 0, "P3 has no attention")
  }

  @Test func theThreeLossTermsOfEveryLevelEqualTheAuthorsCode() throws {
    let (model, golden) = (try Self.model(), try Goldens(Self.folder.appendingPathComponent("golden.safetensors")))
    let levels = model(images: golden["images"])
    let losses = model.levelLosses(levels, paddedSize: (128, 160), imageSizes: Self.imageSizes, targets: Self.targets(golden))
    for (index, terms) in losses.enumerated() {
      for name in ["loss_cls", "loss_bbox", "loss_iou"] {
        expectClose(try #require(terms[name]).reshaped(1), golden["\(name).P\(index + 3)"], relative: 1e-4, absolute: 1e-5, "\(name) P\(index + 3)")
      }
    }
  }

  @Test func detectionsEqualTheAuthorsCodeWithItsScoreFusion() throws {
    let (model, golden) = (try Self.model(), try Goldens(Self.folder.appendingPathComponent("golden.safetensors")))
    let found = withInferenceMode {
      model.detections(model(images: golden["images"]), paddedSize: (128, 160), imageSizes: Self.imageSizes)
    }
    for (image, detections) in found.enumerated() {
      let expected = golden["detections\(image).boxes"]
      #expect(detections.boxes.size(0) == expected.size(0))
      expectClose(detections.boxes, expected[.all, 0..<4], relative: 1e-4, absolute: 1e-4, "image \(image) boxes")
      expectClose(detections.scores, expected[.all, 4], relative: 1e-4, absolute: 1e-5, "image \(image) scores")
      #expect(detections.labels.asArray(Int64.self) == golden["detections\(image).labels"].to(.int64).asArray(Int64.self), "image \(image) labels")
    }
  }
}

/// What swift-detr's DSA-RetinaNet does beyond the authors' code: the corrected defaults, bad configs.
@Suite struct DSARetinaNetTests {
  @Test func theIoUTargetIsDetachedUnlessTheLegacyFlagIsOn() throws {
    let golden = try Goldens(DSAOfficialTests.folder.appendingPathComponent("golden.safetensors"))
    var gradients: [Double] = []
    for throughTarget in [false, true] {
      let model = try DSAOfficialTests.model()
      var config = model.config
      config.gradientThroughIoUTarget = throughTarget
      let variant = try RetinaNetModel(config: config, kind: .dsaRetinaNet)
      try variant.load(stateDict: Dictionary(uniqueKeysWithValues: model.stateDict().map { ($0.key, $0.tensor) }))
      let levels = variant(images: golden["images"])
      let losses = variant.levelLosses(
        levels, paddedSize: (128, 160), imageSizes: DSAOfficialTests.imageSizes, targets: DSAOfficialTests.targets(golden))
      losses.map { $0["loss_iou"]! }.reduce(Tensor.zeros([]), +).backward()
      gradients.append(variant.head.regressor.weight.grad?.abs().sum().item(Double.self) ?? 0)
    }
    #expect(gradients[0] == 0, "the confidence loss leaves the box branch alone")
    #expect(gradients[1] > 1e-6, "with the fork's behaviour its gradient reaches the box branch (\(gradients[1]))")
  }

  @Test func theCorrectedFusionDiffersOnlyOnLevelsTheForkSkips() throws {
    let golden = try Goldens(DSAOfficialTests.folder.appendingPathComponent("golden.safetensors"))
    let legacy = try DSAOfficialTests.model()
    func detections(legacy legacyFusion: Bool, candidates: Int) throws -> [(boxes: Tensor, scores: Tensor, labels: Tensor)] {
      var config = legacy.config
      (config.legacyScoreFusion, config.candidatesPerLevel) = (legacyFusion, candidates)
      let model = try RetinaNetModel(config: config, kind: .dsaRetinaNet)
      try model.load(stateDict: Dictionary(uniqueKeysWithValues: legacy.stateDict().map { ($0.key, $0.tensor) }))
      model.eval()
      return withInferenceMode { model.detections(model(images: golden["images"]), paddedSize: (128, 160), imageSizes: DSAOfficialTests.imageSizes) }
    }
    // With 10 candidates per level every level (P7 has 18 anchors) takes the fork's fused branch: the same.
    let (a, b) = (try detections(legacy: true, candidates: 10), try detections(legacy: false, candidates: 10))
    for (x, y) in zip(a, b) { expectClose(x.scores, y.scores, relative: 0, absolute: 0, "every level fused either way") }
    // With 1,000 only P3 (2,880 anchors) does in the fork; the corrected scores are lower elsewhere.
    let (c, d) = (try detections(legacy: true, candidates: 1000), try detections(legacy: false, candidates: 1000))
    #expect(zip(c, d).contains { $0.scores.size(0) != $1.scores.size(0) || ($0.scores - $1.scores).abs().max().item(Double.self) > 1e-3 })
  }

  @Test func badConfigsNameTheField() {
    var config = RetinaNetConfig.small
    config.attentionLevels = [4, 8]
    #expect { try RetinaNetModel(config: config) } throws: { "\($0)".contains("attention_levels") }
    config = .small
    config.legacyScoreFusion = true
    #expect { try RetinaNetModel(config: config) } throws: { "\($0)".contains("object_confidence") }
    config = .small
    config.channels = 20
    #expect { try RetinaNetModel(config: config) } throws: { "\($0)".contains("channels") }
  }

  @Test func presetsHaveTheReferenceKeysAndSizes() throws {
    let plain = try withSeededGenerator(0) { try RetinaNetModel(config: .r50) }
    let dsa = try withSeededGenerator(0) { try RetinaNetModel(config: .r50DSAConfidence, kind: .dsaRetinaNet) }
    let count = { (model: RetinaNetModel) in model.parameters().reduce(0) { $0 + $1.elementCount } }
    // RetinaNet R50 with 80 classes, P6 from C5: ResNet-50's convolutions 23,454,912 and its batch norms'
    // scales and shifts 53,120 (parameters in mmdet's norm_eval; their statistics are buffers), pyramid
    // 7,997,440, head 6,463,220. DSA adds 8 × 82,241 and the IoU output 256 × 9 × 9 + 9.
    #expect(count(plain) == 37_968_692, "\(count(plain))")
    #expect(count(dsa) - count(plain) == 657_928 + 20_745, "\(count(dsa) - count(plain))")
    let small = try withSeededGenerator(0) { try RetinaNetModel(config: .small) }
    let smallDSA = try withSeededGenerator(0) { try RetinaNetModel(config: .smallDSA, kind: .dsaRetinaNet) }
    #expect(count(small) == 12_260_660 && count(smallDSA) == 12_302_268, "\(count(small)), \(count(smallDSA))")
    // torchvision's retinanet_resnet50_fpn (P6 from P5, 91 classes) has 34,014,999 parameters.
    let torchvision = try withSeededGenerator(0) { try RetinaNetModel(config: .r50Torchvision) }
    #expect(count(torchvision) == 34_014_999, "\(count(torchvision))")
    let keys = Set(dsa.stateDict().map(\.key))
    for key in [
      "backbone.layer4.2.bn3.running_var", "neck.lateral_convs.2.conv.weight", "neck.fpn_convs.4.conv.bias", "neck.fpn_selfatt.7.gamma",
      "neck.fpn_selfatt.0.query_conv.weight", "bbox_head.cls_convs.3.conv.weight", "bbox_head.retina_iou.bias",
    ] {
      #expect(keys.contains(key), "\(key)")
    }
  }
}

/// The anchors' two orders within a location.
@Suite struct AnchorOrderTests {
  @Test func sizeMajorIsRatioMajorTransposed() {
    var generator = AnchorGenerator(convention: .mmdet)
    let ratioMajor = generator.baseAnchors(level: 0)
    generator.order = .sizeMajor
    let sizeMajor = generator.baseAnchors(level: 0)
    // Ratio-major a = ratio · 3 + scale; size-major a = scale · 3 + ratio.
    for ratio in 0..<3 {
      for scale in 0..<3 { #expect(ratioMajor[ratio * 3 + scale] == sizeMajor[scale * 3 + ratio]) }
    }
    // Ratio 0.5 (h/w) at scale 1: 45.25 wide, 22.63 high at stride 8.
    #expect(abs(ratioMajor[0][2] - ratioMajor[0][0] - 45.2548) < 1e-3 && abs(ratioMajor[0][3] - ratioMajor[0][1] - 22.6274) < 1e-3)
  }
}

/// detectron2's loss normalizer: a moving average of the batch's positive anchors, kept as a buffer.
@Suite struct RetinaNetNormalizationTests {
  @Test func theMovingAverageNormalizerUpdatesInTrainingAndDividesTheLosses() throws {
    let golden = try Goldens(DSAOfficialTests.folder.appendingPathComponent("golden.safetensors"))
    let reference = try DSAOfficialTests.model()
    var config = reference.config
    config.lossNormalization = .movingAverage
    let model = try RetinaNetModel(config: config, kind: .dsaRetinaNet)
    var weights = Dictionary(uniqueKeysWithValues: reference.stateDict().map { ($0.key, $0.tensor) })
    weights["loss_normalizer"] = Tensor.full([], 100.0)
    try model.load(stateDict: weights)
    model.train()
    let levels = model(images: golden["images"])
    let batchSums = reference.levelLosses(levels, paddedSize: (128, 160), imageSizes: DSAOfficialTests.imageSizes, targets: DSAOfficialTests.targets(golden))
    let averaged = model.levelLosses(levels, paddedSize: (128, 160), imageSizes: DSAOfficialTests.imageSizes, targets: DSAOfficialTests.targets(golden))
    let normalizer = try #require(model.lossNormalizer).item(Double.self)
    // mmdet divides by Σ max(positives, 1) over the images; the average is 0.9 · 100 + 0.1 · positives.
    let positives = (normalizer - 90) / 0.1
    #expect(positives >= 3 && abs(positives.rounded() - positives) < 1e-3, "\(normalizer)")
    let ratio = averaged[0]["loss_cls"]!.item(Double.self) / batchSums[0]["loss_cls"]!.item(Double.self)
    #expect(abs(ratio - positives / normalizer) < 1e-4, "the sums divided by the average instead of the positives")
    #expect(model.stateDict().contains { $0.key == "loss_normalizer" }, "kept in checkpoints")
  }
}

/// RetinaNet in mmdet's convention equals the authors' fork with DSA off (every gate at 0: the branches
/// are the identity, the fork's pyramid and head are mmdet 2.4's RetinaNet): head outputs and the focal
/// and L1 terms of every level.
@Suite struct RetinaNetMMDetTests {
  @Test func plainRetinaNetEqualsTheForkWithDSAOff() throws {
    var config = RetinaNetConfig.r50
    config.backbone = BackboneConfig(blocksPerStage: [2, 2, 2, 2], stemChannels: 8, stageChannels: [8, 16, 32, 64], bottleneck: false)
    (config.channels, config.classCount) = (32, 5)
    let model = try withSeededGenerator(0) { try RetinaNetModel(config: config) }
    let weights = try SafeTensors.load(contentsOf: DSAOfficialTests.folder.appendingPathComponent("model.safetensors")).tensors
    // The fork always has the attention modules and the IoU output; plain RetinaNet has neither.
    try model.load(stateDict: weights.filter { !$0.key.hasPrefix("neck.fpn_selfatt.") && !$0.key.hasPrefix("bbox_head.retina_iou.") })
    model.eval()
    let golden = try Goldens(DSAOfficialTests.folder.appendingPathComponent("golden.safetensors"))
    let levels = withInferenceMode { model(images: golden["images"]) }
    for (index, level) in levels.enumerated() {
      expectClose(level.logits, golden["plain.P\(index + 3).cls_score"], relative: 1e-4, absolute: 1e-4, "P\(index + 3) logits")
      expectClose(level.deltas, golden["plain.P\(index + 3).bbox_pred"], relative: 1e-4, absolute: 1e-4, "P\(index + 3) deltas")
    }
    let losses = model.levelLosses(
      model(images: golden["images"]), paddedSize: (128, 160), imageSizes: DSAOfficialTests.imageSizes, targets: DSAOfficialTests.targets(golden))
    for (index, terms) in losses.enumerated() {
      for name in ["loss_cls", "loss_bbox"] {
        expectClose(terms[name]!.reshaped(1), golden["plain.\(name).P\(index + 3)"], relative: 1e-4, absolute: 1e-5, "\(name) P\(index + 3)")
      }
    }
  }
}
