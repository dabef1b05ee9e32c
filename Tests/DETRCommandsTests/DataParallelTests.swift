import COCO
import Foundation
import Testing
import Torch
import TorchTestSupport
import Training

/// Data-parallel training with the real `detr` processes on localhost (Gloo): the same run as one
/// process over the same global batches, the loss of a worker, resuming with another world size, and
/// the errors of a run that cannot start.
@Suite(.serialized) struct DataParallelTests {
  struct Finished {
    var status: Int32
    var reason: Process.TerminationReason
    var output: String
    var seconds: Double
  }

  /// A `detr` process with extra environment variables, its stdout and stderr going to one file.
  final class Worker {
    let process = Process()
    let log: URL
    let started = Date()

    init(_ arguments: [String], environment: [String: String] = [:], log: URL) throws {
      self.log = log
      _ = FileManager.default.createFile(atPath: log.path, contents: nil)
      let handle = try FileHandle(forWritingTo: log)
      process.executableURL = KillAndResumeTests.detr
      process.arguments = arguments
      process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
      (process.standardOutput, process.standardError) = (handle, handle)
      try process.run()
    }

    func finish(within seconds: Double = 300) -> Finished {
      let deadline = Date().addingTimeInterval(seconds)
      while process.isRunning && Date() < deadline { usleep(20_000) }
      if process.isRunning { kill(process.processIdentifier, SIGKILL) }
      process.waitUntilExit()
      let output = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
      return Finished(status: process.terminationStatus, reason: process.terminationReason, output: output, seconds: Date().timeIntervalSince(started))
    }
  }

  /// A port for a run's store, below Linux's ephemeral range (32768 and up), where the kernel's own
  /// choices for outgoing connections would collide with it now and then.
  static func randomPort() -> Int { Int.random(in: 20000..<32000) }

  /// A small dataset whose 28 training images make 7 global batches of 4 (so that no step of one
  /// process is a partial batch where two shards would be completed from the start).
  static func dataset(in root: URL) throws -> [String] {
    try SyntheticShapes.generate(to: root.appendingPathComponent("data"), images: 32, size: 96, seed: 5)
    return [
      "train", "--model", "deformable-detr", "--preset", "small", "--data", root.appendingPathComponent("data/images").path,
      "--train-annotations", root.appendingPathComponent("data/annotations/train.json").path, "--image-scale", "0.12",
      "--augmentation", "flip", "--set", "transformer.dropout=0", "--set", "backbone.frozen_batch_norm=true", "--log-every", "1", "--seed", "3",
      "--threads", "1",
    ]
  }

  static func losses(in run: URL) throws -> [[String: Double]] {
    try String(contentsOf: run.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n").compactMap { line in
      let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] ?? [:]
      guard object["loss"] != nil else { return nil }
      return object.compactMapValues { ($0 as? NSNumber)?.doubleValue }.filter { $0.key != "images_per_second" }
    }
  }

  static func step(of run: URL) -> Int {
    let data = try? Data(contentsOf: run.appendingPathComponent("last/trainer.json"))
    return ((data.flatMap { try? JSONSerialization.jsonObject(with: $0) }) as? [String: Any])?["step"] as? Int ?? 0
  }

  /// Two workers with batch 2 take the same 20 steps as one process with batch 4 over the same global
  /// samples (augmentation on: flips drawn per sample; dropout off): the same losses at every step and
  /// the same weights, and the same AP from the sharded evaluation.
  ///
  /// At a tenth of the recipe's learning rate: the two differ only in float32 summation order (a batch
  /// of 4 against 2 + 2), and at the recipe's 2e-4 Adam and the Hungarian matching amplify that over 20
  /// steps to about 2e-3 relative in the losses, exactly as much as one process with 1 thread against
  /// 2 threads does (measured on the same data), which says nothing about the data-parallel code.
  @Test func twoWorkersEqualOneProcessWithTheirGlobalBatch() throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("dp-equal-\(UUID())")
    defer { try? FileManager.default.removeItem(at: root) }
    let common = try Self.dataset(in: root) + [
      "--val-annotations", root.appendingPathComponent("data/annotations/val.json").path, "--max-iterations", "20", "--epochs", "3",
      "--checkpoint-every", "5", "--learning-rate", "0.00002",
    ]
    let one = root.appendingPathComponent("one")
    let two = root.appendingPathComponent("two")
    let single = try Worker(common + ["--batch-size", "4", "--output", one.path], log: root.appendingPathComponent("one.log")).finish()
    #expect(single.status == 0, "\(single.output)")
    let parallel = try Worker(common + ["--batch-size", "2", "--nproc-per-node", "2", "--output", two.path], log: root.appendingPathComponent("two.log"))
      .finish()
    #expect(parallel.status == 0, "\(parallel.output)")

    let (a, b) = (try Self.losses(in: one), try Self.losses(in: two))
    #expect(a.count == 20 && b.count == 20)
    var worstLoss = 0.0
    for (x, y) in zip(a, b) {
      #expect(x["step"] == y["step"] && x["epoch"] == y["epoch"])
      for (name, value) in x where name != "step" && name != "epoch" {
        worstLoss = max(worstLoss, abs(value - (y[name] ?? .nan)) / max(abs(value), 1e-12))
      }
    }
    #expect(worstLoss <= 1e-5, "largest relative difference of a loss term: \(worstLoss)")

    let weightsA = try SafeTensors.load(contentsOf: one.appendingPathComponent("last/model.safetensors")).tensors
    let weightsB = try SafeTensors.load(contentsOf: two.appendingPathComponent("last/model.safetensors")).tensors
    #expect(Set(weightsA.keys) == Set(weightsB.keys))
    var (difference, norm, largest) = (0.0, 0.0, 0.0)
    for (name, x) in weightsA where x.dtype.isFloatingPoint {
      let y = try #require(weightsB[name])
      let delta = (x.to(.float64) - y.to(.float64))
      difference += delta.square().sum().item(Double.self)
      norm += x.to(.float64).square().sum().item(Double.self)
      largest = max(largest, delta.abs().max().item(Double.self))
    }
    // Relative over all weights (measured 2e-7). Per element the bound is one learning-rate step: Adam
    // moves an element by about the learning rate whatever its gradient's size, so an element whose
    // gradient is float noise (or a bias that starts at 0) may differ by up to that (measured 4.9e-6).
    #expect((difference / norm).squareRoot() <= 1e-5, "relative L2 difference of the weights: \((difference / norm).squareRoot())")
    #expect(largest <= 2e-5, "largest difference of a weight: \(largest)")
    #expect(Self.step(of: one) == 20 && Self.step(of: two) == 20)

    // Sharded evaluation, gathered on rank 0, scores like the single process.
    let ap = { (run: URL) in
      try String(contentsOf: run.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n").compactMap {
        (try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["ap50"] as? Double
      }
    }
    let (apOne, apTwo) = (try ap(one), try ap(two))
    #expect(apOne.count == 2 && apOne.count == apTwo.count)
    for (x, y) in zip(apOne, apTwo) { #expect(abs(x - y) <= 1e-4) }
  }

  /// Workers started as torchrun starts them (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT): one is
  /// SIGKILLed mid-run and the other stops within a minute naming it; the run then continues with
  /// two workers, and again with one, to its end.
  @Test func aLostWorkerIsNamedAndTheRunResumesWithAnotherWorldSize() throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("dp-kill-\(UUID())")
    defer { try? FileManager.default.removeItem(at: root) }
    let run = root.appendingPathComponent("run")
    let common = try Self.dataset(in: root) + ["--batch-size", "2", "--epochs", "40", "--checkpoint-every", "2", "--output", run.path]
    let port = Self.randomPort()
    let workers = try (0..<2).map { rank in
      try Worker(
        common + ["--max-iterations", "400"],
        environment: ["RANK": "\(rank)", "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "\(port)"],
        log: root.appendingPathComponent("rank\(rank).log"))
    }
    KillAndResumeTests.waitForCheckpoint(in: run, atStep: 6)
    kill(workers[1].process.processIdentifier, SIGKILL)
    let killedAt = Date()
    let survivor = workers[0].finish(within: 90)
    let waited = Date().timeIntervalSince(killedAt)
    _ = workers[1].finish()
    #expect(survivor.status == 1 && survivor.reason == .exit)
    #expect(waited < 60, "the survivor stopped \(waited) s after the kill")
    #expect(survivor.output.contains("lost rank 1 of 2"), "\(survivor.output.suffix(400))")
    #expect(!survivor.output.contains("frame #"), "no C++ backtrace")
    let stoppedAt = Self.step(of: run)
    #expect(stoppedAt >= 6 && stoppedAt < 400)

    // Two workers again, through the launcher: continues from the checkpoint.
    let again = try Worker(
      common + ["--resume", "--nproc-per-node", "2", "--max-iterations", "\(stoppedAt + 4)"], log: root.appendingPathComponent("again.log")
    ).finish()
    #expect(again.status == 0, "\(again.output.suffix(600))")
    #expect(Self.step(of: run) == stoppedAt + 4)
    // One process: the global sample position carries over; the run finishes its steps.
    let alone = try Worker(common + ["--resume", "--max-iterations", "\(stoppedAt + 8)"], log: root.appendingPathComponent("alone.log")).finish()
    #expect(alone.status == 0, "\(alone.output.suffix(600))")
    #expect(Self.step(of: run) == stoppedAt + 8)
    let steps = try Self.losses(in: run).compactMap { $0["step"].map(Int.init) }
    #expect(steps == Array(1...(stoppedAt + 8)), "one metrics line per step, none lost or repeated")
  }

  /// The launcher watches its workers: one SIGKILLed (as the out-of-memory killer would) stops the run
  /// naming its rank and signal.
  @Test func theLauncherStopsTheRunWhenAWorkerDies() throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("dp-launcher-\(UUID())")
    defer { try? FileManager.default.removeItem(at: root) }
    let run = root.appendingPathComponent("run")
    let launcher = try Worker(
      Self.dataset(in: root) + ["--batch-size", "2", "--epochs", "40", "--max-iterations", "400", "--nproc-per-node", "2", "--output", run.path],
      log: root.appendingPathComponent("launcher.log"))
    KillAndResumeTests.waitForCheckpoint(in: run, atStep: 1)
    let children = try String(
      contentsOfFile: "/proc/\(launcher.process.processIdentifier)/task/\(launcher.process.processIdentifier)/children", encoding: .utf8
    ).split(separator: " ").compactMap { Int32($0) }
    #expect(children.count == 2)
    // The workers are started in rank order.
    kill(try #require(children.sorted().last), SIGKILL)
    let finished = launcher.finish(within: 90)
    #expect(finished.status == 1)
    #expect(finished.output.contains("worker rank 1 of 2"), "\(finished.output.suffix(400))")
    #expect(finished.output.contains("SIGKILL"))
    for child in children { #expect(kill(child, 0) != 0, "every worker is gone") }
  }

  /// Ctrl-C (SIGINT) to the launcher stops every worker and the launcher says so; a launcher killed
  /// outright (SIGKILL) takes its workers with it (the kernel's parent-death signal): no worker is left.
  @Test func theLauncherForwardsSignalsAndTakesItsWorkersAlong() throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("dp-signals-\(UUID())")
    defer { try? FileManager.default.removeItem(at: root) }
    let common = try Self.dataset(in: root) + ["--batch-size", "2", "--epochs", "40", "--max-iterations", "400", "--nproc-per-node", "2"]
    for signal in [SIGINT, SIGKILL] {
      let run = root.appendingPathComponent("run-\(signal)")
      let launcher = try Worker(common + ["--output", run.path], log: root.appendingPathComponent("launcher-\(signal).log"))
      KillAndResumeTests.waitForCheckpoint(in: run, atStep: 1)
      let pid = launcher.process.processIdentifier
      let children = try String(contentsOfFile: "/proc/\(pid)/task/\(pid)/children", encoding: .utf8).split(separator: " ").compactMap { Int32($0) }
      #expect(children.count == 2)
      kill(pid, signal)
      let finished = launcher.finish(within: 60)
      if signal == SIGINT {
        #expect(finished.status == 1 && finished.output.contains("stopped by SIGINT"), "\(finished.output.suffix(300))")
      }
      let deadline = Date().addingTimeInterval(20)
      while children.contains(where: { kill($0, 0) == 0 }) && Date() < deadline { usleep(50_000) }
      for child in children { #expect(kill(child, 0) != 0, "worker \(child) outlived its launcher (signal \(signal))") }
    }
  }

  /// Runs that cannot start say why in one line, without waiting for the timeout where it can be told at once.
  @Test func workersThatCannotStartSayWhy() throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("dp-errors-\(UUID())")
    defer { try? FileManager.default.removeItem(at: root) }
    let common = try Self.dataset(in: root) + ["--batch-size", "2", "--max-iterations", "2", "--distributed-timeout", "20"]
    func single(_ arguments: [String], _ environment: [String: String]) throws -> Finished {
      try Worker(common + arguments + ["--output", root.appendingPathComponent("run-\(UUID())").path], environment: environment,
        log: root.appendingPathComponent("\(UUID()).log")).finish(within: 120)
    }
    let cases: [([String], [String: String], String)] = [
      ([], ["RANK": "0"], "WORLD_SIZE is not"),
      ([], ["RANK": "2", "WORLD_SIZE": "2", "MASTER_PORT": "29999"], "RANK=2 must be in 0..<WORLD_SIZE (2)"),
      ([], ["RANK": "0", "WORLD_SIZE": "two", "MASTER_PORT": "29999"], "WORLD_SIZE=two is not a whole number"),
      ([], ["RANK": "0", "WORLD_SIZE": "2", "MASTER_PORT": "70000"], "MASTER_PORT=70000 must be between 1 and 65535"),
      (["--backend", "nccl"], ["RANK": "0", "WORLD_SIZE": "2", "MASTER_PORT": "29999"], "--backend nccl needs a CUDA libtorch"),
      (["--nproc-per-node", "0"], [:], "--nproc-per-node must be between 1 and 1024"),
    ]
    for (arguments, environment, message) in cases {
      let result = try single(arguments, environment)
      #expect(result.status != 0 && result.output.contains(message), "\(arguments) \(environment): \(result.output.suffix(300))")
      #expect(result.output.split(separator: "\n").filter { $0.hasPrefix("error:") }.count == 1)
    }

    // A port that another program listens on: rank 0 cannot serve the store there.
    let port = Self.randomPort()
    let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(listener) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = INADDR_ANY
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    listen(listener, 1)
    let busy = try single([], ["RANK": "0", "WORLD_SIZE": "2", "MASTER_PORT": "\(port)"])
    #expect(busy.status == 1 && busy.output.contains("could not join") && busy.output.contains("MASTER_PORT (\(port)) is free"), "\(busy.output.suffix(400))")
    #expect(busy.seconds < 20, "told at once: \(busy.seconds) s")

    // Two workers given different settings: both stop naming the flag and both values.
    let mismatch = Self.randomPort()
    let folder = root.appendingPathComponent("mismatch")
    let workers = try (0..<2).map { rank in
      try Worker(
        common + ["--output", folder.path, "--learning-rate", rank == 0 ? "0.0001" : "0.0002"],
        environment: ["RANK": "\(rank)", "WORLD_SIZE": "2", "MASTER_PORT": "\(mismatch)"], log: root.appendingPathComponent("m\(rank).log"))
    }
    for worker in workers {
      let result = worker.finish(within: 120)
      #expect(result.status == 1 && result.output.contains("--learning-rate") && result.output.contains("0.0002"), "\(result.output.suffix(400))")
    }
    #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("last").path), "nothing trained")

    // Workers started with different world sizes: both stop at once, naming both values (Gloo alone
    // would wait until the timeout for a rank that never comes).
    let sizes = Self.randomPort()
    let mismatched = try [(0, 2), (1, 3)].map { rank, worldSize in
      try Worker(
        common + ["--output", root.appendingPathComponent("sizes").path],
        environment: ["RANK": "\(rank)", "WORLD_SIZE": "\(worldSize)", "MASTER_PORT": "\(sizes)"], log: root.appendingPathComponent("s\(rank).log"))
    }
    for worker in mismatched {
      let result = worker.finish(within: 120)
      #expect(result.status == 1 && result.output.contains("WORLD_SIZE=3") && result.output.contains("rank 0 with 2"), "\(result.output.suffix(400))")
      #expect(result.seconds < 15, "told at once: \(result.seconds) s")
    }

    // An address no machine answers at: rank 1 gives up after --distributed-timeout, saying what to check.
    let unreachable = try single(["--distributed-timeout", "3"], ["RANK": "1", "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "1"])
    #expect(unreachable.status == 1 && unreachable.output.contains("MASTER_ADDR (127.0.0.1)"), "\(unreachable.output.suffix(400))")
    #expect(unreachable.seconds < 60)
  }
}
