import COCO
import Foundation
import Testing
import Training

@testable import DETRCommands

/// What a person sees around a training run: the start summary, the end line, Ctrl-C, and no folder
/// left by a run that failed at its start.
@Suite(.serialized) struct TrainSessionTests {
  @Test func plurals() {
    #expect(TrainCommand.counted(1, "step") == "1 step" && TrainCommand.counted(2, "step") == "2 steps")
    #expect(TrainCommand.counted(1, "box", plural: "boxes") == "1 box" && TrainCommand.counted(0, "box", plural: "boxes") == "0 boxes")
  }

  @Test func theSummaryAndTheEndLine() {
    let summary = TrainCommand.startSummary(
      model: "detr small", parameters: 12_345_678, device: "cpu", precision: "fp32", train: (1, 3), validation: nil, categories: 6,
      input: DetectorInput(shorterSide: 160, maxSize: 267), batchSize: 8, epochs: 1, steps: 219, output: "runs/x")
    #expect(
      summary == """
        training detr small (12.35 M parameters) on cpu, fp32
          train: 1 image, 3 boxes, 6 categories
          validation: none (--val-annotations evaluates after every epoch)
          input: shorter side 160, longer side at most 267
          batch 8, 1 epoch, 219 steps
          output: runs/x
        """)
    #expect(
      TrainCommand.endLine(steps: 1, output: "runs/x", bestAP: 0.4567, hasBest: true)
        == "done: 1 step; last checkpoint runs/x/last; best AP 0.457 in runs/x/best; chart runs/x/chart.png")
    #expect(TrainCommand.endLine(steps: 5, output: "r", bestAP: nil, hasBest: false) == "done: 5 steps; last checkpoint r/last; chart r/chart.png")
  }

  @Test func ctrlCSaysWhereTheCheckpointIsAndHowToResume() throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("ctrl-c-\(UUID())")
    defer { try? FileManager.default.removeItem(at: root) }
    try SyntheticShapes.generate(to: root.appendingPathComponent("data"), images: 24, size: 96, seed: 3)
    let run = root.appendingPathComponent("run")
    let arguments = [
      "train", "--model", "detr", "--config", try KillAndResumeTests.tinyConfig(in: root).path, "--data", root.appendingPathComponent("data/images").path,
      "--train-annotations", root.appendingPathComponent("data/annotations/train.json").path, "--image-scale", "0.1", "--epochs", "200",
      "--batch-size", "2", "--checkpoint-every", "2", "--output", run.path,
    ]
    let process = Process()
    process.executableURL = KillAndResumeTests.detr
    process.arguments = arguments
    let pipe = Pipe()
    (process.standardOutput, process.standardError) = (pipe, pipe)
    try process.run()
    KillAndResumeTests.waitForCheckpoint(in: run, atStep: 4)
    kill(process.processIdentifier, SIGINT)
    let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    #expect(process.terminationStatus == 130, "\(output.suffix(800))")
    #expect(output.contains("stopped by Ctrl-C: the last checkpoint is \(run.path)/last (epoch "), "\(output.suffix(800))")
    #expect(output.contains("continue with:\n  detr " + arguments.joined(separator: " ") + " --resume"))
    #expect(!output.contains("Program crashed") && !output.contains("error:"))
    // The command it gives resumes.
    let state = try JSONDecoder().decode(TrainingPosition.self, from: Data(contentsOf: run.appendingPathComponent("last/trainer.json")))
    let resumed = try ConvertCommandTests.detr(arguments + ["--resume", "--max-iterations", "\(state.step + 1)"])
    #expect(resumed.status == 0 && resumed.output.contains("resumed at epoch \(state.epoch + 1), step \(state.step)"), "\(resumed.output)")
  }

  @Test func smallImagesTrainAtTheirOwnSizeAndTheCheckpointKnowsIt() throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("own-size-\(UUID())")
    defer { try? FileManager.default.removeItem(at: root) }
    try SyntheticShapes.generate(to: root.appendingPathComponent("data"), images: 8, size: 96, seed: 3)
    let run = root.appendingPathComponent("run")
    let result = try ConvertCommandTests.detr([
      "train", "--model", "detr", "--config", try KillAndResumeTests.tinyConfig(in: root).path, "--data", root.appendingPathComponent("data/images").path,
      "--train-annotations", root.appendingPathComponent("data/annotations/train.json").path, "--epochs", "1", "--batch-size", "4",
      "--output", run.path,
    ])
    #expect(result.status == 0, "\(result.output)")
    #expect(result.output.contains("their shorter sides are about 96 pixels") && result.output.contains("so --image-scale 0.12"), "\(result.output)")
    #expect(try DetectorCheckpoint.load(run).input == DetectorInput(shorterSide: 96, maxSize: 160))
  }

  @Test func aRunThatFailsAtItsStartLeavesNoFolder() throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("early-\(UUID())")
    defer { try? FileManager.default.removeItem(at: root) }
    try SyntheticShapes.generate(to: root.appendingPathComponent("data"), images: 8, size: 96, seed: 3)
    let notWeights = root.appendingPathComponent("weights.pth")
    try Data("not a checkpoint".utf8).write(to: notWeights)
    let run = root.appendingPathComponent("run")
    let result = try ConvertCommandTests.detr([
      "train", "--model", "detr", "--config", try KillAndResumeTests.tinyConfig(in: root).path, "--data", root.appendingPathComponent("data/images").path,
      "--train-annotations", root.appendingPathComponent("data/annotations/train.json").path, "--image-scale", "0.1", "--epochs", "1",
      "--backbone-weights", notWeights.path, "--output", run.path,
    ])
    #expect(result.status == 1 && result.output.contains("is not a PyTorch checkpoint"), "\(result.output)")
    #expect(!FileManager.default.fileExists(atPath: run.path), "no run folder (and no stale run.lock) is left behind")
  }
}
