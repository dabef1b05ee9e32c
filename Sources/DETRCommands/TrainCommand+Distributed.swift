import ArgumentParser
import Foundation
import Torch
import Training

extension ProcessGroup.Backend: ExpressibleByArgument {}

/// A data-parallel worker: joins the group, lets rank 0 check and lock the run folder and resolve a
/// resumed run's settings, checks that every rank was given the same settings, and trains its shard.
extension TrainCommand {
  func runAsWorker(_ worker: WorkerEnvironment) throws {
    WorkerLauncher.stopsWithItsLauncher()
    let device = try Device.resolve(self.device, localRank: worker.localRank)
    let group = try worker.join(backend: backend ?? (device.isCUDA ? .nccl : .gloo), timeout: .seconds(distributedTimeout), device: device)
    let isMain = worker.rank == 0
    // Every rank must be given the same settings (torchrun runs one command line everywhere).
    let mine = try Self.settingsJSON(recordedSettings)
    let everyone = try group.allGather(bytes: Array(mine))
    for (rank, bytes) in everyone.enumerated() where rank != worker.rank && bytes != Array(mine) {
      let theirs = (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any] ?? [:]
      let differing = recordedSettings.keys.sorted().filter { !Self.same(recordedSettings[$0]!, theirs[$0] ?? NSNull()) }
      let fields = differing.map { "--\($0.replacingOccurrences(of: "_", with: "-")) \(Self.text(recordedSettings[$0]!)) here, \(Self.text(theirs[$0] ?? NSNull())) on rank \(rank)" }
      throw CommandFailure("the workers were started with different settings: \(fields.joined(separator: "; ")). Start every worker with the same command")
    }
    // Rank 0 checks the folder and resolves the run's settings; the others take its answer.
    var lock: RunLock?
    var outcome: [String: Any] = [:]
    if isMain {
      do {
        lock = try prepareRunFolder()
        let (effective, changes) = resume ? try resolvedForResume() : (self, [])
        outcome = ["settings": effective.recordedSettings, "changes": changes]
      } catch {
        outcome = ["error": DETRCommand.message(for: error)]
        _ = try? group.broadcast(bytes: Array(Self.settingsJSON(outcome)))
        throw error
      }
    }
    defer { withExtendedLifetime(lock) {} }
    let agreed = try group.broadcast(bytes: isMain ? Array(Self.settingsJSON(outcome)) : [])
    let answer = (try JSONSerialization.jsonObject(with: Data(agreed))) as? [String: Any] ?? [:]
    if let message = answer["error"] as? String { throw CommandFailure("rank 0 stopped: \(message)") }
    var effective = self
    if let settings = answer["settings"] as? [String: Any] { effective.apply(settings) }
    let changes = answer["changes"] as? [[String: Any]] ?? []
    // The built-in dataset is made once per machine, by its first worker, before the others read it.
    if worker.localRank == 0 { _ = try effective.dataset() }
    try group.barrier()
    // Each rank draws from its own seed (as DETR's seed + rank); the weights are rank 0's, broadcast.
    do {
      try Generator(seed: effective.seed &+ UInt64(worker.rank)).withCurrent {
        try effective.train(recordingChanges: changes, group: group)
      }
    } catch let error as DistributedError {
      throw CommandFailure(
        "rank \(worker.rank) stopped: \(DataParallel.lostRanks(in: group, after: error)). Continue with --resume once every worker can run again")
    }
  }

  static func settingsJSON(_ object: [String: Any]) throws -> Data {
    try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
  }
}
extension Precision: ExpressibleByArgument {}
