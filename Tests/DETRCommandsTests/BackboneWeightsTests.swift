import COCO
import Detection
import Detectors
import Foundation
import Testing
import Torch
import TorchTestSupport
import Training

/// `--backbone-weights`: ImageNet ResNet files in torchvision's, timm's and transformers' layouts
/// (Scripts/goldens/make_backbone_weight_fixtures.py, a narrow ResNet-50 shape) load every backbone
/// tensor and give the reference's features; training from them keeps the frozen parts frozen.
@Suite struct BackboneWeightsTests {
  static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/backbone_weights")
  static let backbone = BackboneConfig(blocksPerStage: [3, 4, 6, 3], stemChannels: 8, stageChannels: [16, 32, 64, 128], bottleneck: true)

  static func resnet(_ config: BackboneConfig = backbone) -> ResNet {
    ResNet(blocksPerStage: config.blocksPerStage, stemChannels: config.stemChannels, stageChannels: config.stageChannels, bottleneck: config.bottleneck)
  }

  @Test(arguments: [("torchvision.pth", "torchvision"), ("timm.safetensors", "torchvision"), ("transformers.safetensors", "transformers")])
  func everyLayoutLoadsEveryTensorAndGivesTheReferenceFeatures(file: String, reference: String) throws {
    let network = Self.resnet()
    let report = try BackboneWeights.load(Self.folder.appendingPathComponent(file), into: network)
    #expect(report.loaded == network.stateDict().count && report.layout == reference, "\(report)")
    #expect(report.classifier.count == 2, "the classifier is named as unused: \(report.classifier)")
    network.eval()
    let golden = try Goldens(Self.folder.appendingPathComponent("golden.safetensors"))
    let features = withInferenceMode { network(golden["image"], stagesOut: [4])[0] }
    expectClose(features, golden["\(reference).features"], relative: 1e-4, absolute: 1e-4, "\(file) stage-4 features")
  }

  @Test func weightsOfAnotherShapeAreRefusedByName() throws {
    let basic = BackboneConfig(blocksPerStage: [1, 1, 1, 1], stemChannels: 8, stageChannels: [8, 16, 32, 64], bottleneck: false)
    #expect {
      try BackboneWeights.load(Self.folder.appendingPathComponent("torchvision.pth"), into: Self.resnet(basic))
    } throws: {
      "\($0)".contains("torchvision.pth") && "\($0)".contains("does not fit the backbone") && "\($0)".contains("stage_channels")
    }
    #expect {
      try BackboneWeights.load(ConvertCommandTests.fixtures.appendingPathComponent("detr/checkpoint.pth"), into: Self.resnet(basic))
    } throws: {
      "\($0)".contains("checkpoint.pth") && "\($0)".contains("does not fit the backbone")
    }
  }

  /// A real `detr train` run: the backbone starts from the file; the stem and first stage (frozen in the
  /// DETR recipe) and every frozen batch-norm statistic end equal to it, the later stages train.
  @Test func trainingStartsFromTheWeightsAndKeepsTheFrozenPartsFrozen() throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("backbone-weights-\(UUID())")
    defer { try? FileManager.default.removeItem(at: root) }
    try SyntheticShapes.generate(to: root.appendingPathComponent("data"), images: 8, size: 96, seed: 5)
    var config = DETRConfig()
    config.backbone = Self.backbone
    config.transformer = TransformerSettings(hiddenDim: 32, heads: 4, encoderLayers: 1, decoderLayers: 1, feedForwardDim: 64, dropout: 0, queries: 10)
    let configFile = root.appendingPathComponent("config.json")
    try JSONEncoder().encode(config).write(to: configFile)
    let weights = Self.folder.appendingPathComponent("torchvision.pth")
    let result = try ConvertCommandTests.detr([
      "train", "--model", "detr", "--config", configFile.path, "--data", root.appendingPathComponent("data/images").path,
      "--train-annotations", root.appendingPathComponent("data/annotations/train.json").path, "--image-scale", "0.2", "--epochs", "1",
      "--batch-size", "4", "--backbone-weights", weights.path, "--output", root.appendingPathComponent("run").path,
    ])
    #expect(result.status == 0, "\(result.output)")
    #expect(result.output.contains("initialized the backbone from") && result.output.contains("the classifier (fc.bias, fc.weight) is not used"), "\(result.output)")
    let source = try PyTorchFile.stateDict(of: PyTorchFile.load(contentsOf: weights), path: weights.path)
    let trained = try DetectorCheckpoint.load(root.appendingPathComponent("run/last"))
    #expect(trained.input == DetectorInput(shorterSide: 160, maxSize: 267), "the checkpoint records the training's evaluation resize (0.2 × 800/1333)")
    let state = Dictionary(uniqueKeysWithValues: trained.detector.stateDict().map { ($0.key, $0.tensor) })
    var (frozen, trainedKeys) = (0, 0)
    for (key, value) in source where !key.hasPrefix("fc.") && !key.hasSuffix("num_batches_tracked") {
      let mine = try #require(state["backbone.0.body.\(key)"], "backbone.0.body.\(key)")
      let same = (mine .== value).all().item(Bool.self)
      let shouldBeFrozen = key.hasPrefix("conv1.") || key.hasPrefix("bn1.") || key.hasPrefix("layer1.") || key.contains("bn") || key.contains("downsample.1")
      if shouldBeFrozen {
        #expect(same, "\(key) is frozen and must keep the file's value")
        frozen += 1
      } else {
        #expect(!same, "\(key) trains and must have moved")
        trainedKeys += 1
      }
    }
    #expect(frozen > 0 && trainedKeys > 0)
  }

  @Test func theFlagsAreCheckedBeforeAnyWork() throws {
    let missing = try ConvertCommandTests.detr(["train", "--backbone-weights", "/nonexistent/r50.pth", "--init-from", "x", "--output", "/tmp/never"])
    #expect(missing.status != 0 && missing.output.contains("--init-from") && missing.output.contains("--backbone-weights"), "\(missing.output)")
  }
}

extension BackboneWeightsTests {
  @Test func aMissingFileIsNamed() {
    #expect {
      try BackboneWeights.load(URL(fileURLWithPath: "/nonexistent/resnet50.pth"), into: Self.resnet())
    } throws: {
      "\($0)".contains("/nonexistent/resnet50.pth") && "\($0)".contains("does not exist")
    }
  }
}
