import Detection
import Foundation
import Testing
import Torch
import TorchNN
import TorchTestSupport

@testable import Detectors

/// RetinaNet in torchvision's convention equals torchvision 0.28's RetinaNet run on the CPU
/// (`Scripts/goldens/make_retinanet_torchvision_goldens.py`): its weights load (current and legacy key
/// names, frozen batch norm with ε = 0), and anchors, pyramid, head outputs, both losses and the
/// detections agree on a padded batch of two images.
@Suite struct RetinaNetTorchvisionTests {
  static let folder = DETRTests.fixture("retinanet_torchvision")
  static let sizes = [(height: 128, width: 160), (height: 96, width: 128)]

  static func model(legacyKeys: Bool = false) throws -> RetinaNetModel {
    var config = RetinaNetConfig.r50Torchvision
    config.backbone = BackboneConfig(blocksPerStage: [1, 1, 1, 1], stemChannels: 8, stageChannels: [8, 16, 32, 64], bottleneck: false)
    (config.channels, config.classCount) = (32, 5)
    let model = try withSeededGenerator(0) { try RetinaNetModel(config: config) }
    var weights = try SafeTensors.load(contentsOf: folder.appendingPathComponent("model.safetensors")).tensors
    if legacyKeys {
      // The released checkpoints' names: inner_blocks.{i}.weight, conv.{2i}.weight.
      weights = Dictionary(
        uniqueKeysWithValues: weights.map { key, value in
          var name = key.replacingOccurrences(of: #"(inner_blocks|layer_blocks)\.(\d)\.0\."#, with: "$1.$2.", options: .regularExpression)
          if let match = name.range(of: #"head\.(classification|regression)_head\.conv\.(\d)\.0\."#, options: .regularExpression) {
            let index = Int(String(name[match].split(separator: ".")[3]))!
            name = name.replacingCharacters(in: match, with: name[match].replacingOccurrences(of: ".conv.\(index).0.", with: ".conv.\(2 * index)."))
          }
          return (name, value)
        })
      #expect(weights.keys.contains("head.classification_head.conv.6.weight") && weights.keys.contains("backbone.fpn.inner_blocks.2.weight"))
    }
    try model.load(torchvision: weights)
    model.eval()
    return model
  }

  static func targets(_ golden: Goldens) -> [MatchTarget] {
    sizes.enumerated().map { image, size in
      let scale = Tensor([Float(size.width), Float(size.height), Float(size.width), Float(size.height)], shape: [4])
      return MatchTarget(
        labels: golden["targets\(image).labels"].to(.int64), boxes: Boxes.cornersToCenter(golden["targets\(image).boxes"] / scale))
    }
  }

  @Test(arguments: [false, true])
  func anchorsPyramidAndHeadEqualTorchvision(legacyKeys: Bool) throws {
    let (model, golden) = (try Self.model(legacyKeys: legacyKeys), try Goldens(Self.folder.appendingPathComponent("golden.safetensors")))
    let levels = withInferenceMode { model(images: golden["images"]) }
    for (index, level) in levels.enumerated() {
      expectClose(level.features.classification, golden["P\(index + 3)"], relative: 1e-4, absolute: 1e-4, "P\(index + 3)")
    }
    let anchors = Tensor.cat(model.anchors(for: levels, paddedSize: (128, 160)), dim: 0)
    expectClose(anchors, golden["anchors"], relative: 0, absolute: 1e-4, "anchors (rounded, strides from the padded size)")
    let logits = Tensor.cat(levels.map { RetinaNetLevelOutput.flatten($0.logits, width: 5) }, dim: 1)
    let deltas = Tensor.cat(levels.map { RetinaNetLevelOutput.flatten($0.deltas, width: 4) }, dim: 1)
    expectClose(logits, golden["cls_logits"], relative: 1e-4, absolute: 1e-4, "logits")
    expectClose(deltas, golden["bbox_regression"], relative: 1e-4, absolute: 1e-4, "deltas")
  }

  @Test func lossesEqualTorchvision() throws {
    let (model, golden) = (try Self.model(), try Goldens(Self.folder.appendingPathComponent("golden.safetensors")))
    let levels = model(images: golden["images"])
    let losses = model.levelLosses(levels, paddedSize: (128, 160), imageSizes: Self.sizes, targets: Self.targets(golden))
    for name in ["loss_cls", "loss_bbox"] {
      let total = losses.map { $0[name]! }.reduce(Tensor.zeros([]), +)
      expectClose(total.reshaped(1), golden[name], relative: 1e-4, absolute: 1e-5, name)
    }
  }

  @Test func detectionsEqualTorchvision() throws {
    let (model, golden) = (try Self.model(), try Goldens(Self.folder.appendingPathComponent("golden.safetensors")))
    let found = withInferenceMode { model.detections(model(images: golden["images"]), paddedSize: (128, 160), imageSizes: Self.sizes) }
    for (image, detections) in found.enumerated() {
      #expect(detections.boxes.size(0) == golden["detections\(image).boxes"].size(0))
      expectClose(detections.boxes, golden["detections\(image).boxes"], relative: 1e-4, absolute: 1e-4, "image \(image) boxes")
      expectClose(detections.scores, golden["detections\(image).scores"], relative: 1e-4, absolute: 1e-5, "image \(image) scores")
      #expect(
        detections.labels.asArray(Int64.self) == golden["detections\(image).labels"].to(.int64).asArray(Int64.self), "image \(image) labels")
    }
  }

  @Test func aCheckpointOfAnotherLayoutIsRefusedByName() throws {
    let model = try withSeededGenerator(0) { try RetinaNetModel(config: .small) }
    let weights = try SafeTensors.load(contentsOf: Self.folder.appendingPathComponent("model.safetensors")).tensors
    #expect { try model.load(torchvision: weights) } throws: { "\($0)".contains("does not fit this RetinaNet") && "\($0)".contains("r50-torchvision") }
  }
}
