import Foundation
import Testing
import Torch
import TorchTestSupport

@testable import TorchNN

/// Optimizers, clipping and schedules against torch.optim over several steps.
@Suite struct OptimizerTests {
  let golden = layerGoldens

  /// Runs the six golden gradient steps on copies of the two golden parameters.
  private func run(_ make: ([(name: String, tensor: Tensor)], [(name: String, tensor: Tensor)]) -> any Optimizer) -> (
    Tensor, Tensor, any Optimizer
  ) {
    let p0 = golden["optim.p0"].clone().requiringGrad()
    let p1 = golden["optim.p1"].clone().requiringGrad()
    let optimizer = make([("p0", p0)], [("p1", p1)])
    for step in 0..<6 {
      p0.grad = golden["optim.g\(step)_0"].clone()
      p1.grad = golden["optim.g\(step)_1"].clone()
      optimizer.step()
    }
    return (p0, p1, optimizer)
  }

  @Test func adamWEqualsPyTorchOverSixSteps() {
    let (p0, p1, optimizer) = run { first, second in
      AdamW(groups: [
        ParameterGroup(parameters: first, learningRate: 1e-2, weightDecay: 1e-2),
        ParameterGroup(parameters: second, learningRate: 3e-3, weightDecay: 0),
      ])
    }
    expectClose(p0, golden["adamw.p0"], "p0")
    expectClose(p1, golden["adamw.p1"], "p1")
    let state = optimizer.stateDict()
    expectClose(state["p0.exp_avg"]!, golden["adamw.exp_avg_0"], "exp_avg")
    expectClose(state["p1.exp_avg_sq"]!, golden["adamw.exp_avg_sq_1"], "exp_avg_sq")
    #expect(state["p0.step"]!.item(Double.self) == 6)
  }

  @Test func sgdWithMomentumDampeningAndWeightDecayEqualsPyTorch() {
    let (p0, p1, optimizer) = run { first, second in
      SGD(
        groups: [
          ParameterGroup(parameters: first, learningRate: 0.1, weightDecay: 1e-3), ParameterGroup(parameters: second, learningRate: 0.05),
        ],
        momentum: 0.9, dampening: 0.1)
    }
    expectClose(p0, golden["sgd.p0"], "p0")
    expectClose(p1, golden["sgd.p1"], "p1")
    expectClose(optimizer.stateDict()["p0.momentum_buffer"]!, golden["sgd.buffer_0"], "momentum buffer")
    let (n0, n1, _) = run { first, second in
      SGD(groups: [ParameterGroup(parameters: first + second, learningRate: 0.1)], momentum: 0.9, nesterov: true)
    }
    expectClose(n0, golden["sgd_nesterov.p0"], "nesterov p0")
    expectClose(n1, golden["sgd_nesterov.p1"], "nesterov p1")
  }

  @Test func savedStateContinuesExactly() throws {
    func make(_ p: Tensor) -> AdamW { AdamW(parameters: [("w", p)], learningRate: 0.01) }
    let straight = golden["optim.p0"].clone().requiringGrad()
    let interrupted = golden["optim.p0"].clone().requiringGrad()
    let first = make(straight)
    var second = make(interrupted)
    for step in 0..<6 {
      if step == 3 {
        let saved = try SafeTensors.decode(SafeTensors.encode(second.stateDict())).tensors
        second = make(interrupted)
        try second.load(stateDict: saved)
      }
      straight.grad = golden["optim.g\(step)_0"].clone()
      interrupted.grad = golden["optim.g\(step)_0"].clone()
      first.step()
      second.step()
    }
    expectClose(interrupted, straight, relative: 0, absolute: 0, "resumed equals uninterrupted")
  }

  @Test func loadingStateForOtherParametersThrows() {
    let optimizer = AdamW(parameters: [("w", Tensor.zeros([3]).requiringGrad())])
    #expect(throws: OptimizerStateError.self) { try optimizer.load(stateDict: ["v.exp_avg": Tensor.zeros([3])]) }
    #expect(throws: OptimizerStateError.self) { try optimizer.load(stateDict: ["w.exp_avg": Tensor.zeros([4])]) }
    #expect(throws: OptimizerStateError.self) { try optimizer.load(stateDict: ["w.velocity": Tensor.zeros([3])]) }
  }

  @Test func gradientClippingEqualsPyTorch() {
    let a = Tensor.zeros([3, 4]).requiringGrad()
    let b = Tensor.zeros([5]).requiringGrad()
    a.grad = golden["clip.g0"].clone()
    b.grad = golden["clip.g1"].clone()
    let total = clipGradientNorm([a, b], maxNorm: 1.5)
    #expect(Swift.abs(total - golden["clip.total"].item(Double.self)) < 1e-5)
    expectClose(a.grad!, golden["clip.clipped0"], "clipped 0")
    expectClose(b.grad!, golden["clip.clipped1"], "clipped 1")
  }

  @Test func schedulesEqualPyTorch() {
    func rates(_ schedule: some LearningRateSchedule) -> Tensor {
      Tensor((0..<30).map { 0.5 * schedule.factor(atStep: $0) }, shape: [30])
    }
    expectClose(rates(StepSchedule(stepSize: 7, gamma: 0.1)), golden["schedule.step"], relative: 1e-9, absolute: 1e-12, "StepLR")
    expectClose(
      rates(MultiStepSchedule(milestones: [5, 12, 20], gamma: 0.5)), golden["schedule.multistep"], relative: 1e-9, absolute: 1e-12,
      "MultiStepLR")
    // PyTorch's cosine restarts its period after totalSteps; ours stays at the minimum, so compare the first period.
    expectClose(
      rates(CosineSchedule(totalSteps: 20, minimumFactor: 0.1))[..<21], golden["schedule.cosine"][..<21], relative: 1e-9, absolute: 1e-12,
      "cosine")
    expectClose(
      rates(WarmupSchedule(warmupSteps: 8, startFactor: 0.01, then: ConstantSchedule())), golden["schedule.linear"], relative: 1e-9,
      absolute: 1e-12, "LinearLR")
  }
}
