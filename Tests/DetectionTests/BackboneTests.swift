import Foundation
import Testing
import Torch
import TorchNN
import TorchTestSupport

@testable import Detection

/// ResNet and position encodings against transformers (Scripts/goldens/make_detection_goldens.py).
@Suite struct BackboneTests {
  let golden = try! Goldens(Bundle.module.url(forResource: "Goldens/backbone", withExtension: "safetensors")!)

  private func stateDict(_ prefix: String) -> [String: Tensor] {
    var result: [String: Tensor] = [:]
    for (key, tensor) in golden.contents.tensors where key.hasPrefix("\(prefix).state.") {
      result[String(key.dropFirst(prefix.count + 7))] = tensor
    }
    return result
  }

  @Test(arguments: [("bottleneck", true, [16, 32, 64, 128]), ("basic", false, [8, 16, 32, 64])])
  func resNetLoadedFromTransformersKeysGivesTheSameFeatures(name: String, bottleneck: Bool, channels: [Int]) throws {
    let resnet = withSeededGenerator(0) {
      ResNet(blocksPerStage: [2, 1, 2, 1], stemChannels: 8, stageChannels: channels, bottleneck: bottleneck)
    }
    let renamed = BackboneKeys.fromTransformersResNet.rename(stateDict("resnet_\(name)"))
    let report = try resnet.load(stateDict: renamed)
    #expect(report.isComplete, "every key maps: \(report.summary)")
    let features = resnet(golden["resnet.image"], stagesOut: [2, 3, 4])
    #expect(features.count == 3)
    // Frozen batch norm is folded into the convolutions, which rounds differently from transformers'
    // separate batch norm: 1e-4, not 1e-5.
    for (index, stage) in [2, 3, 4].enumerated() {
      expectClose(features[index], golden["resnet_\(name).stage\(stage)"], relative: 1e-4, absolute: 1e-4, "\(name) stage \(stage)")
    }
  }

  /// Frozen layers run their ReLU and residual sums in place; that must not change the outputs or
  /// the gradients of the stages that train (both norms: frozen statistics and trainable batch norm).
  @Test(arguments: [true, false])
  func frozenStagesGiveTheSameOutputsAndGradients(frozenNormalization: Bool) throws {
    func make() -> ResNet {
      withSeededGenerator(1) {
        ResNet(
          blocksPerStage: [1, 2, 1, 1], stemChannels: 8, stageChannels: [16, 32, 64, 128], bottleneck: true,
          frozenNormalization: frozenNormalization)
      }
    }
    let (trainable, partlyFrozen) = (make(), make())
    partlyFrozen.freezeStemAndFirstStage()
    let image = Tensor.randn([2, 3, 64, 48], generator: Generator(seed: 2))
    var outputs: [Tensor] = []
    for model in [trainable, partlyFrozen] {
      let features = model(image, stagesOut: [3, 4])
      (features[0].square().sum() + features[1].sum()).backward()
      outputs.append(features[1].detached())
    }
    expectClose(outputs[1], outputs[0], relative: 1e-5, absolute: 1e-5, "last stage")
    let expected = Dictionary(uniqueKeysWithValues: trainable.namedParameters().map { ($0.name, $0.tensor) })
    let trained = partlyFrozen.trainableParameters()
    #expect(!trained.isEmpty && trained.count < expected.count)
    for (name, parameter) in trained {
      expectClose(parameter.grad!, expected[name]!.grad!, relative: 1e-4, absolute: 1e-5, "gradient of \(name)")
    }
  }

  @Test func standardDepthsHaveTorchvisionKeysAndShapes() {
    let resnet = withSeededGenerator(0) { ResNet(depth: .resNet50) }
    let keys = resnet.stateDict().map(\.key)
    #expect(keys.contains("layer1.0.downsample.0.weight") && keys.contains("layer4.2.bn3.running_var") && keys.contains("bn1.running_mean"))
    #expect(!keys.contains { $0.contains("num_batches_tracked") })
    #expect(resnet.stateDict().count == 265, "torchvision's resnet50: 53 convolutions and 53 frozen batch norms of 4 buffers")
    let parameters = resnet.parameters().reduce(0) { $0 + $1.elementCount }
    #expect(parameters == 23_454_912, "ResNet-50 convolutions: 23.45 M weights")
    let dilated = withSeededGenerator(0) { ResNet(depth: .resNet18, dilateLastStage: true) }
    let output = withInferenceMode { dilated(Tensor.zeros([1, 3, 64, 64]), stagesOut: [3, 4]) }
    #expect(output.map(\.shape) == [[1, 256, 4, 4], [1, 512, 4, 4]], "DC5 keeps stride 16 in the last stage")
    resnet.freezeStemAndFirstStage()
    #expect(resnet.trainableParameters().allSatisfy { !$0.name.hasPrefix("conv1") && !$0.name.hasPrefix("layer1.") })
  }

  @Test func sinePositionEncodingsEqualTransformers() {
    let padding = golden["position.valid"] .== 0
    expectClose(SinePositionEncoding(featuresPerAxis: 64)(paddingMask: padding), golden["position.detr"], "DETR")
    expectClose(
      SinePositionEncoding(featuresPerAxis: 64, normalize: false)(paddingMask: padding), golden["position.detr_unnormalized"],
      "not normalized")
    expectClose(SinePositionEncoding(featuresPerAxis: 64, offset: -0.5)(paddingMask: padding), golden["position.deformable"], "Deformable")
  }

  @Test func learnedPositionEncodingEqualsTransformers() throws {
    let encoding = withSeededGenerator(0) { LearnedPositionEncoding(featuresPerAxis: 64) }
    try encoding.load(stateDict: ["row_embed.weight": golden["position.row_embed"], "col_embed.weight": golden["position.col_embed"]])
    expectClose(encoding(batch: 2, height: 9, width: 12), golden["position.learned"], "learned")
  }

  @Test func keyRenamingShiftsIndicesAndKeepsUnmatchedKeys() {
    let rules = BackboneKeys.fromTransformersResNet
    #expect(rules.rename("encoder.stages.3.layers.2.layer.0.normalization.running_var") == "layer4.2.bn1.running_var")
    #expect(rules.rename("encoder.stages.0.layers.0.shortcut.convolution.weight") == "layer1.0.downsample.0.weight")
    #expect(rules.rename("something.else") == "something.else")
    let shifted = KeyRenaming(rules: [.init(#"a\.(\d+)"#, "b.{1-1}.{1}")])
    #expect(shifted.rename("a.3") == "b.2.3")
  }
}
