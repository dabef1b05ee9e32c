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
