import Foundation
import Testing
import Torch
import TorchTestSupport

@testable import TorchNN

/// The same tree as the reference script's `Tiny` module.
private final class Tiny: Module {
  let stem = Sequential([Conv2d(3, 4, kernelSize: 3), BatchNorm2d(4), ReLU()])
  let head = Linear(4, 2)
  let scale = Tensor.ones([1])
  let offset = Tensor.zeros([2])

  override init() {
    super.init()
    registerModule("stem", stem)
    registerModule("head", head)
    registerParameter("scale", scale)
    registerBuffer("offset", offset)
  }
}

@Suite struct ModuleTests {
  @Test func stateDictKeysAndOrderEqualPyTorch() {
    let tiny = withSeededGenerator(0) { Tiny() }
    #expect(tiny.stateDict().map(\.key) == layerGoldens.keyList("tiny.keys"))
    #expect(
      tiny.namedParameters().map(\.name) == [
        "scale", "stem.0.weight", "stem.0.bias", "stem.1.weight", "stem.1.bias", "head.weight", "head.bias",
      ])
  }

  @Test func stateDictRoundTripsThroughSafeTensorsIntoAFreshModule() throws {
    let trained = withSeededGenerator(1) { Tiny() }
    withNoGrad { trained.head.weight += 1 }
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("module-\(UUID())")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let file = directory.appendingPathComponent("model.safetensors")
    try SafeTensors.save(Dictionary(uniqueKeysWithValues: trained.stateDict().map { ($0.key, $0.tensor) }), to: file)

    let fresh = withSeededGenerator(2) { Tiny() }
    let report = try fresh.load(stateDict: SafeTensors.load(contentsOf: file).tensors)
    #expect(report.isComplete && report.loaded.count == 11)
    for ((key, a), (_, b)) in zip(trained.stateDict(), fresh.stateDict()) {
      expectClose(b, a, relative: 0, absolute: 0, key)
    }
    let input = Tensor.randn([1, 3, 5, 5], generator: Generator(seed: 9))
    trained.eval()
    fresh.eval()
    expectClose(
      fresh.head(fresh.stem(input).mean(dims: [2, 3])), trained.head(trained.stem(input).mean(dims: [2, 3])), relative: 0, absolute: 0,
      "same outputs")
  }

  @Test func strictLoadReportsEveryMismatchAndChangesNothing() {
    let module = withSeededGenerator(0) { Tiny() }
    let before = module.head.weight.clone()
    var state = Dictionary(uniqueKeysWithValues: module.stateDict().map { ($0.key, $0.tensor.clone()) })
    state["head.weight"] = Tensor.zeros([3, 4])
    state["stem.0.bias"] = nil
    state["extra.weight"] = Tensor.zeros([1])
    state["scale"] = Tensor.full([1], 5.0)
    do {
      try module.load(stateDict: state)
      Issue.record("a mismatched state dict loaded")
    } catch let error as StateDictError {
      #expect(error.report.missing == ["stem.0.bias"])
      #expect(error.report.unexpected == ["extra.weight"])
      #expect(error.report.misshaped == [.init(key: "head.weight", expected: [2, 4], found: [3, 4])])
      #expect(error.description.contains("head.weight: expected shape [2, 4], found [3, 4]"))
    } catch {
      Issue.record("unexpected error \(error)")
    }
    expectClose(module.head.weight, before, relative: 0, absolute: 0, "unchanged")
    #expect(module.scale.item(Float.self) == 1, "nothing loaded")

    let report = try? module.load(stateDict: state, strict: false)
    #expect(report?.loaded.contains("scale") == true && module.scale.item(Float.self) == 5, "partial load for fine-tuning")
  }

  @Test func trainingModeFreezingAndDtypeConversion() {
    let module = withSeededGenerator(0) { Tiny() }
    #expect(module.namedModules().allSatisfy { $0.module.isTraining })
    module.eval()
    #expect(module.namedModules().allSatisfy { !$0.module.isTraining })
    module.stem.freeze()
    #expect(module.trainableParameters().map(\.name) == ["scale", "head.weight", "head.bias"])
    module.unfreeze()
    #expect(module.trainableParameters().count == 7)
    let weight = module.head.weight
    module.to(dtype: .float64)
    #expect(weight.dtype == .float64 && weight.requiresGrad, "the same tensor object, converted")
    #expect(module.stem[1].stateDict().first { $0.key == "num_batches_tracked" }?.tensor.dtype == .int64)
  }
}

extension Sequential {
  subscript(index: Int) -> Module { layers[index] }
}
