import COCO
import Detection
import Detectors
import Foundation
import Testing
import Torch
import TorchNN
import TorchTestSupport

@testable import Training

/// The weights' moving average follows ema ← d·ema + (1 − d)·w step by step, in a real training run.
@Suite(.serialized) struct WeightsEMATests {
  @Test func averagesFollowTheFormulaOverThreeTrainingSteps() throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("ema-\(UUID())")
    defer { try? FileManager.default.removeItem(at: root) }
    let decay = 0.9
    let trainer = try withSeededGenerator(3) { try ResumeTests().makeTrainer(output: root, emaDecay: decay) }
    let ema = try #require(trainer.ema)
    func weights() -> [String: Tensor] {
      Dictionary(trainer.detector.stateDict().map { ($0.key, $0.tensor.detached().clone()) }, uniquingKeysWith: { a, _ in a })
    }
    var expected = weights().filter { ema.state[$0.key] != nil }
    for step in 1...3 {
      trainer.maxIterations = step
      try withSeededGenerator(UInt64(step)) { try trainer.run(progress: { _, _ in }) }
      let now = weights()
      var moved = 0
      for (key, average) in expected {
        let current = now[key]!
        let next = average.dtype.isFloatingPoint ? average * decay + current * (1 - decay) : current
        expectClose(ema.state[key]!, next, relative: 1e-6, absolute: 1e-7, "step \(step) \(key)")
        if average.dtype.isFloatingPoint && !(current .== average).all().item(Bool.self) { moved += 1 }
        expected[key] = next
      }
      #expect(moved > 0, "step \(step) changed the weights, so the average is tested")
    }
    // The checkpoint keeps the averages exactly.
    let saved = try SafeTensors.load(contentsOf: root.appendingPathComponent("last/ema.safetensors")).tensors
    for (key, average) in ema.state { #expect((saved[key]! .== average).all().item(Bool.self), "\(key)") }
  }

  @Test func averagedWeightsAreLentAndTheRawOnesRestored() throws {
    let linear = withSeededGenerator(0) { Linear(3, 2) }
    let ema = WeightsEMA(of: linear, decay: 0.5)
    let raw = linear.weight.detached().clone()
    withNoGrad { linear.weight.copy(from: raw + 2) }
    ema.update(from: linear)
    let inside = try ema.withAveragedWeights(in: linear) { linear.weight.detached().clone() }
    expectClose(inside, raw + 1, relative: 0, absolute: 1e-6, "the average of raw and raw + 2")
    expectClose(linear.weight, raw + 2, relative: 0, absolute: 0, "the raw weights are back")
  }

  @Test func resumingWithoutTheDecayIsRefused() throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("ema-resume-\(UUID())")
    defer { try? FileManager.default.removeItem(at: root) }
    let trainer = try withSeededGenerator(3) { try ResumeTests().makeTrainer(output: root, emaDecay: 0.99) }
    trainer.maxIterations = 3
    try trainer.run(progress: { _, _ in })
    let plain = try withSeededGenerator(3) { try ResumeTests().makeTrainer(output: root) }
    #expect { try plain.resume() } throws: { "\($0)".contains("--ema-decay") && "\($0)".contains("last") }
  }
}
