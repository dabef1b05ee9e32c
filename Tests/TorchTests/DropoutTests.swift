import Foundation
import Testing
import Torch
import TorchTestSupport

/// Dropout in training (on the CPU, the shim's counter-based mask): the share dropped, the scale of
/// the rest, the gradient, reproducibility from the generator's seed, thread independence.
@Suite(.serialized) struct DropoutTests {
  let probability = 0.1

  func dropped(_ input: Tensor, seed: UInt64) -> [Float] {
    withSeededGenerator(seed) { Functional.dropout(input, probability: probability, training: true).asArray(Float.self) }
  }

  @Test func dropsAboutTheProbabilityAndScalesTheRest() {
    let rows = 1000
    let columns = 1000
    let output = dropped(Tensor.ones([rows, columns]), seed: 7)
    let scale = Float(1 / (1 - probability))
    #expect(output.allSatisfy { $0 == 0 || $0 == scale }, "kept values are scaled by 1 / (1 - p)")
    let zeros = output.count { $0 == 0 }
    // Binomial(10⁶, 0.1): standard deviation 3·10⁻⁴ of the share; 0.002 is more than 6 of them.
    #expect(abs(Double(zeros) / Double(output.count) - probability) < 0.002, "dropped share \(Double(zeros) / Double(output.count))")
    // Row shares spread as independent draws would (variance p(1-p)/1000), not in runs or stripes.
    let shares = (0..<rows).map { row in Double(output[row * columns..<(row + 1) * columns].count { $0 == 0 }) / Double(columns) }
    let mean = shares.reduce(0, +) / Double(rows)
    let variance = shares.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(rows - 1)
    let expected = probability * (1 - probability) / Double(columns)
    #expect(variance > expected * 0.7 && variance < expected * 1.4, "row variance \(variance), independent draws give \(expected)")
    let columnShares = (0..<columns).map { column in Double((0..<rows).count { output[$0 * columns + column] == 0 }) / Double(rows) }
    #expect(columnShares.allSatisfy { abs($0 - probability) < 0.06 }, "no column is dropped much more or less often than the rest")
  }

  /// Under bfloat16 autocast dropout sees bfloat16 activations: the same mask as in float32 (it depends on
  /// the seed and the element's index only), the product computed in float32 and rounded once.
  @Test func reducedPrecisionInputsGetTheSameMask() {
    let x = withSeededGenerator(1) { Tensor.randn([37, 129]) }
    for dtype in [DType.bfloat16, .float16] {
      let reduced = x.to(dtype).requiringGrad()
      let output = withSeededGenerator(5) { Functional.dropout(reduced, probability: probability, training: true) }
      let full = withSeededGenerator(5) { Functional.dropout(reduced.detached().to(.float32), probability: probability, training: true) }
      #expect(output.dtype == dtype)
      #expect(output.to(.float32).asArray(Float.self) == full.to(dtype).to(.float32).asArray(Float.self), "\(dtype)")
      output.sum().backward()
      let kept = full.asArray(Float.self).map { $0 == 0 ? Float(0) : Float(1 / (1 - probability)) }
      #expect(reduced.grad!.to(.float32).asArray(Float.self) == kept.map { Tensor([$0]).to(dtype).to(.float32).item(Float.self) }, "\(dtype)")
    }
  }

  @Test func gradientIsTheMaskScaled() {
    let x = withSeededGenerator(1) { Tensor.rand([64, 33]) + 0.5 }.requiringGrad()
    let y = withSeededGenerator(2) { Functional.dropout(x, probability: probability, training: true) }
    (y * 3).sum().backward()
    let scale = Float(1 / (1 - probability))
    let expected = y.asArray(Float.self).map { $0 == 0 ? Float(0) : 3 * scale }
    #expect(x.grad!.asArray(Float.self) == expected)
  }

  @Test func theSeedGivesTheMaskAndEachCallDrawsAnother() {
    let input = Tensor.ones([257, 129])
    #expect(dropped(input, seed: 5) == dropped(input, seed: 5))
    #expect(dropped(input, seed: 5) != dropped(input, seed: 6))
    let (first, second) = withSeededGenerator(5) {
      (
        Functional.dropout(input, probability: probability, training: true).asArray(Float.self),
        Functional.dropout(input, probability: probability, training: true).asArray(Float.self)
      )
    }
    #expect(first != second, "consecutive calls draw different masks")
  }

  @Test func theMaskDoesNotDependOnTheThreadCount() {
    let input = Tensor.ones([300, 1000])
    withExclusiveThreadCount {
      Torch.threadCount = 1
      let single = dropped(input, seed: 9)
      Torch.threadCount = 2
      #expect(dropped(input, seed: 9) == single)
    }
  }

  /// Draws inside a generator's scope come from it alone: reseeding the default generator meanwhile
  /// changes nothing, and a scope on another thread meanwhile draws its own sequence.
  @Test func aScopedGeneratorIsApartFromTheDefaultOneAndOtherThreads() {
    let input = Tensor.ones([64, 65])
    let masks = { (count: Int, between: () -> Void) -> [[Float]] in
      (0..<count).map { _ in
        between()
        return Functional.dropout(input, probability: probability, training: true).asArray(Float.self)
      }
    }
    let expected = Generator(seed: 11).withCurrent { masks(3) {} }
    nonisolated(unsafe) var onTheOtherThread: [Float] = []  // written before `done` is signalled
    let reseeded = Generator(seed: 11).withCurrent { () -> [[Float]] in
      let done = DispatchSemaphore(value: 0)
      let other = Thread {
        onTheOtherThread = Generator(seed: 3).withCurrent { Tensor.rand([8]).asArray(Float.self) }
        done.signal()
      }
      other.start()
      done.wait()
      return masks(3) { Torch.manualSeed(3) }
    }
    #expect(reseeded == expected)
    #expect(expected[0] != expected[1] && expected[1] != expected[2], "each call draws another mask")
    #expect(onTheOtherThread == Generator(seed: 3).withCurrent { Tensor.rand([8]).asArray(Float.self) })
  }

  /// Kept elements are exactly input × 1/(1-p), dropped ones input × 0 as in libtorch: a NaN or an
  /// infinity in the input stays non-finite, so a diverging run is still seen.
  @Test func keptValuesAreScaledExactlyAndNonFiniteInputsStayNonFinite() {
    let input = withSeededGenerator(3) { Tensor.randn([999, 37]) }
    let values = input.asArray(Float.self)
    let output = dropped(input, seed: 4)
    let scale = Float(1 / (1 - probability))
    let kept = zip(values, output).filter { $0.1 != 0 }
    #expect(kept.allSatisfy { $0.1 == $0.0 * scale }, "kept values are the input times 1 / (1 - p)")
    #expect(kept.count > values.count * 8 / 10, "\(kept.count) of \(values.count) kept")
    let nonFinite = dropped(Tensor.full([64, 65], Float.nan), seed: 4) + dropped(Tensor.full([64, 65], Float.infinity), seed: 4)
    #expect(nonFinite.allSatisfy { !$0.isFinite }, "a dropped NaN or infinity stays non-finite")
  }

  @Test func evaluationAndTheEdgeProbabilities() {
    let input = Tensor.rand([10, 10])
    #expect(Functional.dropout(input, probability: probability, training: false).asArray(Float.self) == input.asArray(Float.self))
    #expect(Functional.dropout(input, probability: 0, training: true).asArray(Float.self) == input.asArray(Float.self))
    #expect(Functional.dropout(input, probability: 1, training: true).asArray(Float.self).allSatisfy { $0 == 0 })
  }
}
