import Testing

@testable import Training

/// Each evaluation during training is one line; the tables go to evaluations.txt.
@Suite struct EvaluationLineTests {
  let stats = [0.4123, 0.6551, 0.43, -1, 0.2, 0.5, 0, 0, 0, 0, 0, 0]

  @Test func aNewBestSaysSo() {
    #expect(
      Trainer.evaluationLine(epoch: 3, of: 6, stats: stats, averaged: nil, best: 0.4123, improved: true)
        == "epoch 3/6 validation: AP 0.412, AP50 0.655, AP75 0.430, AP small/medium/large -/0.200/0.500  best so far (saved as best/)")
  }

  @Test func otherwiseTheBestSoFarIsGivenAndTheEMAIsOnTheSameLine() {
    #expect(
      Trainer.evaluationLine(epoch: 4, of: 6, stats: stats, averaged: [0.45, 0.7] + Array(repeating: 0, count: 10), best: 0.5, improved: false)
        == "epoch 4/6 validation: AP 0.412, AP50 0.655, AP75 0.430, AP small/medium/large -/0.200/0.500; EMA AP 0.450, AP50 0.700  (best AP 0.500)")
  }
}
