import ArgumentParser
import Foundation
import Torch
import TorchNN

/// `detr check`: trains a small classifier on two interleaved spirals with the package's own layers
/// and AdamW: a quick end-to-end check of the tensor, autograd, layer and optimizer stack.
struct CheckCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "check",
    abstract: "Train a small network on a built-in 2-D problem and report its accuracy (a quick check of the stack).")

  @Option(help: "Optimizer steps.")
  var steps = 300

  @Option(help: "Points per spiral.")
  var points = 200

  @Option(help: "Random seed for data and initialisation.")
  var seed: UInt64 = 0

  @Option(help: "Print the loss every this many steps (0: only the summary).")
  var every = 50

  func validate() throws {
    guard steps > 0 else { throw ValidationError("--steps must be positive, got \(steps)") }
    guard points >= 10 else { throw ValidationError("--points must be at least 10, got \(points)") }
    guard every >= 0 else { throw ValidationError("--every must be 0 or more, got \(every)") }
  }

  func run() throws {
    let result = SpiralsDemo(steps: steps, pointsPerClass: points, seed: seed).run { step, loss in
      if every > 0 && (step % every == 0 || step == steps) {
        print("step \(step)/\(steps)  loss \(String(format: "%.4f", loss))")
      }
    }
    print(
      "trained \(result.parameterCount) parameters for \(steps) steps in \(String(format: "%.2f", result.seconds)) s: "
        + "loss \(String(format: "%.4f", result.initialLoss)) -> \(String(format: "%.4f", result.finalLoss)), "
        + "accuracy \(String(format: "%.1f", result.accuracy * 100))%")
  }
}

/// The spirals check's work, separate from the command so tests can run it.
public struct SpiralsDemo {
  public struct Result {
    public var initialLoss: Double
    public var finalLoss: Double
    public var accuracy: Double
    public var parameterCount: Int
    public var seconds: Double
  }

  public var steps: Int
  public var pointsPerClass: Int
  public var seed: UInt64

  public init(steps: Int, pointsPerClass: Int, seed: UInt64) {
    self.steps = steps
    self.pointsPerClass = pointsPerClass
    self.seed = seed
  }

  /// Points `[2n, 2]` on two spirals with noise, and labels `[2n]` (int64).
  func makeData() -> (points: Tensor, labels: Tensor) {
    let generator = Generator(seed: seed)
    let n = pointsPerClass
    let radius = Tensor.linspace(0.1, 1, steps: n)
    let angle = radius * 3 * Double.pi
    var points: [Tensor] = []
    for spiral in 0..<2 {
      let phase = angle + Double(spiral) * Double.pi
      let xy = Tensor.stack([radius * phase.cos(), radius * phase.sin()], dim: 1)
      points.append(xy + Tensor.randn([n, 2], generator: generator) * 0.02)
    }
    let labels = Tensor.cat([Tensor.zeros([n], dtype: .int64), Tensor.ones([n], dtype: .int64)])
    return (Tensor.cat(points), labels)
  }

  public func run(progress: (Int, Double) -> Void = { _, _ in }) -> Result {
    let start = Date()
    let (points, labels) = makeData()
    let model = Generator(seed: seed).withCurrent { MLP(inputDim: 2, hiddenDim: 64, outputDim: 2, layerCount: 3) }
    let optimizer = AdamW(parameters: model.namedParameters(), learningRate: 1e-2, weightDecay: 1e-4)
    let schedule = CosineSchedule(totalSteps: steps, minimumFactor: 0.05)
    var initialLoss = 0.0
    var finalLoss = 0.0
    for step in 1...steps {
      optimizer.setLearningRates(schedule.learningRates(base: [1e-2], atStep: step - 1))
      optimizer.zeroGrad()
      let loss = Functional.crossEntropy(model(points), targets: labels)
      loss.backward()
      optimizer.step()
      finalLoss = loss.item(Double.self)
      if step == 1 { initialLoss = finalLoss }
      progress(step, finalLoss)
    }
    let accuracy = withInferenceMode {
      (model(points).argmax(dim: 1) .== labels).to(.float32).mean().item(Double.self)
    }
    return Result(
      initialLoss: initialLoss, finalLoss: finalLoss, accuracy: accuracy,
      parameterCount: model.parameters().reduce(0) { $0 + $1.elementCount },
      seconds: Date().timeIntervalSince(start))
  }
}
