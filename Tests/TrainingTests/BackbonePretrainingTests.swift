import COCO
import Detection
import Detectors
import Foundation
import Testing
import Torch

@testable import Training

/// `detr pretrain-backbone`'s engine: a small ResNet learns the shapes' crops well above chance, and
/// what it writes loads into a detector's backbone through `--backbone-weights`' loader.
@Suite struct BackbonePretrainingTests {
  static let backbone = BackboneConfig(blocksPerStage: [1, 1, 1, 1], stemChannels: 16, stageChannels: [16, 32, 64, 128], bottleneck: false)

  @Test func aSmallResNetLearnsTheCropsAndItsWeightsLoadIntoADetector() throws {
    var settings = BackbonePretraining.Settings()
    (settings.images, settings.validationImages, settings.imageSize, settings.cropSize) = (240, 60, 128, 32)
    (settings.epochs, settings.batchSize, settings.learningRate) = (5, 32, 0.1)
    var epochs: [BackbonePretraining.Epoch] = []
    let (classifier, summaries) = try BackbonePretraining(backbone: Self.backbone, settings: settings).run(progress: { epochs.append($0) })
    #expect(summaries.count == 5 && epochs.count == 5)
    // Seven classes: chance is about 1/7; always answering the most common class (background) scores its share.
    let held = SyntheticShapes.classificationCrops(images: 60, size: 128, cropSize: 32, seed: settings.seed &+ 1)
    let majority = Double(Dictionary(grouping: held, by: \.label).values.map(\.count).max()!) / Double(held.count)
    #expect(summaries.last!.validationAccuracy >= majority + 0.04, "\(summaries.map(\.validationAccuracy)) vs majority \(majority)")
    #expect(summaries.last!.loss < summaries.first!.loss, "\(summaries.map(\.loss))")

    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("pretrain-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: folder) }
    let file = folder.appendingPathComponent("backbone.safetensors")
    let state = classifier.torchvisionStateDict()
    #expect(state["fc.weight"]?.shape == [7, 128] && state["layer4.0.conv2.weight"] != nil && state["bn1.running_var"] != nil)
    try SafeTensors.save(state, to: file)
    var config = DETRConfig()
    (config.backbone, config.classCount) = (Self.backbone, 3)
    let detector = DETRModel(config: config)
    let report = try BackboneWeights.load(file, into: try #require(detector.backboneNetwork))
    #expect(report.classifier.sorted() == ["fc.bias", "fc.weight"])
    let loaded = try #require(detector.backboneNetwork).stateDict().first { $0.key == "layer2.0.bn1.running_mean" }?.tensor
    #expect((try #require(loaded) .== state["layer2.0.bn1.running_mean"]!).all().item(Bool.self), "the trained statistics arrive")
  }

  @Test func aDivergingRateStopsWithAMessageNamingTheFlag() {
    var settings = BackbonePretraining.Settings()
    (settings.images, settings.validationImages, settings.imageSize, settings.cropSize, settings.epochs) = (20, 5, 64, 16, 2)
    settings.learningRate = 1e6
    #expect { try BackbonePretraining(backbone: Self.backbone, settings: settings).run() } throws: { error in
      "\(error)".contains("--learning-rate")
    }
  }
}
