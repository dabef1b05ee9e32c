import COCO
import Foundation
import Testing
import Torch
import TorchTestSupport
import Training

/// The real `detr train` process, killed with SIGKILL mid-run and resumed, ends with the weights and
/// the losses of a run never interrupted.
@Suite(.serialized) struct KillAndResumeTests {
  static let detr = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("detr")

  static func tinyConfig(in folder: URL) throws -> URL {
    let config = """
      {"backbone": {"blocks_per_stage": [1, 1, 1, 1], "stem_channels": 8, "stage_channels": [8, 16, 32, 64], "bottleneck": false, "dilation": false},
       "transformer": {"hidden_dim": 32, "heads": 4, "encoder_layers": 1, "decoder_layers": 2, "feed_forward_dim": 64, "dropout": 0.1, "queries": 10},
       "class_count": 6, "learned_position_encoding": false, "no_object_weight": 0.1,
       "loss": {"class_cost": 1, "box_cost": 5, "giou_cost": 2, "class_loss_weight": 1, "box_loss_weight": 5, "giou_loss_weight": 2, "auxiliary_loss": true}}
      """
    let url = folder.appendingPathComponent("tiny.json")
    try config.write(to: url, atomically: true, encoding: .utf8)
    return url
  }

  /// Waits (at most two minutes) until the run in `folder` has a last checkpoint at `step` or later.
  static func waitForCheckpoint(in folder: URL, atStep step: Int) {
    let state = folder.appendingPathComponent("last/trainer.json")
    let deadline = Date().addingTimeInterval(120)
    while Date() < deadline {
      if let data = try? Data(contentsOf: state), let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
        (object["step"] as? Int ?? 0) >= step
      {
        return
      }
      usleep(20_000)
    }
  }

  static func train(_ arguments: [String]) throws -> Process {
    let process = Process()
    process.executableURL = detr
    process.arguments = ["train"] + arguments
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    try process.run()
    return process
  }

  /// Writes a small dataset and the tiny config under `root`, trains the run never interrupted into
  /// `root/straight`, and returns the arguments every run shares (all but `--output`).
  static func prepareRun(in root: URL, epochs: Int, checkpointEvery: Int, seed: Int, extra: [String] = []) throws -> [String] {
    try SyntheticShapes.generate(to: root.appendingPathComponent("data"), images: 24, size: 96, seed: UInt64(seed))
    let common = [
      "--model", "detr", "--config", try tinyConfig(in: root).path, "--data", root.appendingPathComponent("data/images").path,
      "--train-annotations", root.appendingPathComponent("data/annotations/train.json").path, "--image-scale", "0.1", "--epochs",
      "\(epochs)", "--batch-size", "2", "--checkpoint-every", "\(checkpointEvery)", "--log-every", "1", "--learning-rate", "0.001",
      "--seed", "\(seed)",
    ] + extra
    let straight = try train(common + ["--output", root.appendingPathComponent("straight").path])
    straight.waitUntilExit()
    #expect(straight.terminationStatus == 0)
    return common
  }

  @Test func killedWithSIGKILLAndResumedEqualsUninterrupted() throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("kill-\(UUID())")
    defer { try? FileManager.default.removeItem(at: root) }
    let common = try Self.prepareRun(in: root, epochs: 2, checkpointEvery: 2, seed: 7)

    let interruptedFolder = root.appendingPathComponent("interrupted")
    let interrupted = try Self.train(common + ["--output", interruptedFolder.path])
    // Kill it once it has written a few checkpoints, at whatever moment that is.
    Self.waitForCheckpoint(in: interruptedFolder, atStep: 6)
    usleep(150_000)
    kill(interrupted.processIdentifier, SIGKILL)
    interrupted.waitUntilExit()
    #expect(interrupted.terminationReason == .uncaughtSignal, "the run was killed before it finished")

    let resumed = try Self.train(common + ["--output", interruptedFolder.path, "--resume"])
    resumed.waitUntilExit()
    #expect(resumed.terminationStatus == 0)

    let a = try SafeTensors.load(contentsOf: root.appendingPathComponent("straight/last/model.safetensors")).tensors
    let b = try SafeTensors.load(contentsOf: interruptedFolder.appendingPathComponent("last/model.safetensors")).tensors
    #expect(a.keys.sorted() == b.keys.sorted())
    for (key, tensor) in a { expectClose(b[key]!, tensor, relative: 0, absolute: 1e-6, key) }
    func losses(_ run: String) throws -> [Double] {
      try String(contentsOf: root.appendingPathComponent("\(run)/metrics.jsonl"), encoding: .utf8).split(separator: "\n").compactMap {
        ((try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any])?["loss"] as? Double
      }
    }
    let (x, y) = (try losses("straight"), try losses("interrupted"))
    #expect(x.count == y.count && x.count == 22, "2 epochs of 11 steps, logged step by step")
    for (p, q) in zip(x, y) { #expect(abs(p - q) <= 1e-6 * max(1, abs(p)), "loss \(p) vs \(q)") }
  }

  /// Killed again and again while it saves a checkpoint at every step, the run always leaves a
  /// checkpoint that loads, resumes from it, and ends where the run never killed ends.
  @Test func killedWhileSavingAlwaysLeavesALoadableCheckpoint() throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("kill-save-\(UUID())")
    defer { try? FileManager.default.removeItem(at: root) }
    let common = try Self.prepareRun(in: root, epochs: 1, checkpointEvery: 1, seed: 3)

    let folder = root.appendingPathComponent("killed")
    let last = folder.appendingPathComponent("last")
    var kills = 0
    var killsDuringSave = 0
    var finished = false
    var generator = SeededRandom(seed: 11, stream: 0, item: 0)
    // Five runs are killed; the sixth is left to finish.
    for attempt in 0..<6 where !finished {
      // As a supervisor would restart it: resume when there is a checkpoint, else start again.
      let run = try Self.train(common + ["--output", folder.path] + (Trainer.hasCheckpoint(in: folder) ? ["--resume"] : []))
      // Kill it while it writes a checkpoint: as soon as the save's partial folder (or the old
      // checkpoint moved aside) shows, after a random extra delay of up to 2 ms.
      let deadline = Date().addingTimeInterval(60)
      func saving() -> Bool {
        ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).contains { $0.hasPrefix(".last.") }
      }
      while run.isRunning && !saving() && Date() < deadline { usleep(200) }
      usleep(UInt32(random: &generator, in: 0...2_000))
      if attempt < 5 && run.isRunning {
        kill(run.processIdentifier, SIGKILL)
        kills += 1
      }
      run.waitUntilExit()
      finished = run.terminationReason == .exit
      if finished { #expect(run.terminationStatus == 0) }
      let siblings = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
      if siblings.contains(where: { $0.hasPrefix(".last.") }) { killsDuringSave += 1 }
      if FileManager.default.fileExists(atPath: last.path) || siblings.contains(".last.previous") {
        // Loads, with the fallback to the previous checkpoint when the kill hit between the two moves.
        let loaded = try DetectorCheckpoint.load(last)
        #expect(loaded.detector.kind == .detr)
      }
    }
    #expect(finished, "the sixth run finished")
    #expect(kills >= 1, "at least one kill landed before the run ended")
    #expect(killsDuringSave >= 1, "killed \(kills) times, \(killsDuringSave) of them with a save in progress")
    let a = try SafeTensors.load(contentsOf: root.appendingPathComponent("straight/last/model.safetensors")).tensors
    let b = try SafeTensors.load(contentsOf: last.appendingPathComponent("model.safetensors")).tensors
    for (key, tensor) in a { expectClose(b[key]!, tensor, relative: 0, absolute: 1e-6, key) }
  }
}

extension UInt32 {
  /// A value in `range` from the test's seeded generator.
  fileprivate init(random generator: inout SeededRandom, in range: ClosedRange<UInt32>) {
    self = range.lowerBound + UInt32(generator.integer(0, Int(range.upperBound - range.lowerBound)))
  }
}

extension KillAndResumeTests {
  /// With `--ema-decay`, a SIGKILLed run resumed ends with the same averaged weights as the run never killed.
  @Test func killedRunResumesWithTheSameAveragedWeights() throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("kill-ema-\(UUID())")
    defer { try? FileManager.default.removeItem(at: root) }
    let common = try Self.prepareRun(in: root, epochs: 1, checkpointEvery: 2, seed: 5, extra: ["--ema-decay", "0.9"])
    let folder = root.appendingPathComponent("interrupted")
    let run = try Self.train(common + ["--output", folder.path])
    Self.waitForCheckpoint(in: folder, atStep: 4)
    kill(run.processIdentifier, SIGKILL)
    run.waitUntilExit()
    #expect(run.terminationReason == .uncaughtSignal)
    let resumed = try Self.train(common + ["--output", folder.path, "--resume"])
    resumed.waitUntilExit()
    #expect(resumed.terminationStatus == 0)
    let a = try SafeTensors.load(contentsOf: root.appendingPathComponent("straight/last/ema.safetensors")).tensors
    let b = try SafeTensors.load(contentsOf: folder.appendingPathComponent("last/ema.safetensors")).tensors
    #expect(!a.isEmpty && a.keys.sorted() == b.keys.sorted())
    for (key, tensor) in a { expectClose(b[key]!, tensor, relative: 0, absolute: 1e-6, key) }
    // The resumed process continued the killed run's event file (cut back to its last whole record, so
    // every record reads) with a restart (SessionLog START), so that TensorBoard drops what the killed
    // run logged past its checkpoint; no second file piles up.
    let eventFiles = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasPrefix("events.out.tfevents.") }
    #expect(eventFiles.count == 1)
    let records = try EventFile.records(at: folder.appendingPathComponent(try #require(eventFiles.first)))
    let restarts = records.indices.filter { records[$0].suffix(4) == [0x3A, 0x02, 0x08, 0x01] }
    #expect(restarts.count == 1 && restarts[0] > 1 && restarts[0] < records.count - 1, "one restart, after the killed run's records and before the resumed run's")
  }
}

extension KillAndResumeTests {
  /// `--ema-decay` with a validation set: both weights are evaluated, the averages kept as `run/ema`.
  @Test func theAveragesAreEvaluatedAndKeptAsACheckpoint() throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("ema-eval-\(UUID())")
    defer { try? FileManager.default.removeItem(at: root) }
    try SyntheticShapes.generate(to: root.appendingPathComponent("data"), images: 12, size: 96, seed: 4)
    let run = root.appendingPathComponent("run")
    let result = try ConvertCommandTests.detr([
      "train", "--model", "detr", "--config", try Self.tinyConfig(in: root).path, "--data", root.appendingPathComponent("data/images").path,
      "--train-annotations", root.appendingPathComponent("data/annotations/train.json").path, "--val-annotations",
      root.appendingPathComponent("data/annotations/val.json").path, "--image-scale", "0.1", "--epochs", "1", "--batch-size", "4",
      "--ema-decay", "0.5", "--log-every", "1", "--output", run.path,
    ])
    #expect(result.status == 0 && result.output.contains("; EMA AP "), "\(result.output)")
    #expect(try String(contentsOf: run.appendingPathComponent("evaluations.txt"), encoding: .utf8).contains("EMA weights (decay 0.5)"))
    let averaged = try DetectorCheckpoint.load(run.appendingPathComponent("ema"))
    let saved = try SafeTensors.load(contentsOf: run.appendingPathComponent("last/ema.safetensors")).tensors
    for (key, tensor) in averaged.detector.stateDict() where saved[key] != nil {
      #expect((tensor .== saved[key]!).all().item(Bool.self), "run/ema holds the averages: \(key)")
    }
    let records = try String(contentsOf: run.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n")
    #expect(records.contains { $0.contains("\"ema_ap\"") } && records.contains { $0.contains("\"ap\"") })
    // TensorBoard's view: one event file in the run folder with the loss terms, the learning rate, both
    // weights' statistics, each category's AP and drawn validation images.
    let eventFiles = try FileManager.default.contentsOfDirectory(atPath: run.path).filter { $0.hasPrefix("events.out.tfevents.") }
    #expect(eventFiles.count == 1)
    let events = try EventFile.records(at: run.appendingPathComponent(eventFiles[0])).map { String(decoding: $0, as: UTF8.self) }
    for tag in [
      "brain.Event:2", "train/loss", "train/loss_ce", "train/loss_giou", "train/learning_rate", "train/images_per_second", "val/ap50",
      "val/ap_per_category/", "val_ema/ap", "val/predictions/0",
    ] {
      #expect(events.contains { $0.contains(tag) }, "\(tag) is in the event file")
    }
    #expect(events.contains { $0.contains("val/predictions/0") && $0.contains("PNG") }, "the drawn images are PNGs")
  }
}

extension KillAndResumeTests {
  /// A second process on a run folder is refused while the first trains, naming its pid; a resume
  /// takes the run's recorded settings: a contradicting flag is named with both values, a changed
  /// `--epochs` is recorded.
  @Test func oneProcessPerRunAndResumeKeepsTheRunsSettings() throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("lock-\(UUID())")
    defer { try? FileManager.default.removeItem(at: root) }
    let common = try Self.prepareRun(in: root, epochs: 1, checkpointEvery: 2, seed: 9)
    let folder = root.appendingPathComponent("run")
    func replacing(_ flag: String, with value: String, in arguments: [String]) -> [String] {
      arguments.enumerated().map { $0.offset > 0 && arguments[$0.offset - 1] == flag ? value : $0.element }
    }
    let fortyEpochs = replacing("--epochs", with: "40", in: common)
    let long = try Self.train(fortyEpochs + ["--output", folder.path])
    // Once it has written a checkpoint, so that there is a run to resume.
    let deadline = Date().addingTimeInterval(60)
    while Date() < deadline && !FileManager.default.fileExists(atPath: folder.appendingPathComponent("last/trainer.json").path) { usleep(20_000) }
    let second = try ConvertCommandTests.detr(["train"] + common + ["--output", folder.path, "--resume"])
    #expect(second.status != 0 && second.output.contains("in use by another training process (pid \(long.processIdentifier))"), "\(second.output)")
    #expect(long.isRunning, "the first run goes on")
    kill(long.processIdentifier, SIGKILL)
    long.waitUntilExit()

    // The lock died with the process. The run was started with --epochs 40 and --batch-size 2.
    let conflicting = try ConvertCommandTests.detr(
      ["train"] + replacing("--learning-rate", with: "0.002", in: fortyEpochs) + ["--batch-size", "4", "--output", folder.path, "--resume"])
    #expect(conflicting.status != 0, "\(conflicting.output)")
    for part in ["--batch-size 4 differs from the run's 2", "--learning-rate 0.002 differs from the run's 0.001", "Leave these flags out"] {
      #expect(conflicting.output.contains(part), "\(part): \(conflicting.output)")
    }
    let shortened = try ConvertCommandTests.detr(["train"] + common + ["--output", folder.path, "--resume"])
    #expect(shortened.status == 0 && shortened.output.contains("changing epochs from 40 to 1"), "\(shortened.output)")
    let config = try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("config.json"))) as! [String: Any]
    let changes = try #require(config["changes"] as? [[String: Any]])
    #expect(changes.count == 1 && changes[0]["field"] as? String == "epochs" && changes[0]["to"] as? Int == 1)
    #expect((config["settings"] as? [String: Any])?["batch_size"] as? Int == 2)
  }
}

extension KillAndResumeTests {
  /// `detr demo` run again continues its run only with the same settings; other data is an error
  /// naming both values, not a silent continuation on new data.
  @Test func demoRerunWithOtherSettingsIsRefused() throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("demo-\(UUID())")
    defer { try? FileManager.default.removeItem(at: root) }
    let run = root.appendingPathComponent("demo").path
    let first = try ConvertCommandTests.detr(["demo", "--output", run, "--images", "16", "--size", "64", "--epochs", "1", "--show", "1"])
    #expect(first.status == 0, "\(first.output.suffix(800))")
    let other = try ConvertCommandTests.detr(["demo", "--output", run, "--images", "24", "--size", "64", "--epochs", "1", "--show", "1"])
    #expect(other.status != 0 && other.output.contains("--synthetic-images 24 differs from the run's 16"), "\(other.output.suffix(800))")
  }
}
