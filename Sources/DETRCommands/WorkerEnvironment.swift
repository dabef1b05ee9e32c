import ArgumentParser
import Foundation
import Torch

/// A data-parallel worker's place, read from the variables torchrun (and Slurm scripts written for
/// it) export: `RANK`, `WORLD_SIZE`, `LOCAL_RANK`, `LOCAL_WORLD_SIZE`, `MASTER_ADDR`, `MASTER_PORT`.
struct WorkerEnvironment: Equatable {
  var rank: Int
  var worldSize: Int
  var localRank: Int
  var localWorldSize: Int
  var masterAddress: String
  var masterPort: Int
  /// `GLOO_SOCKET_IFNAME`: the network interface Gloo uses (else the address of this machine's name).
  var interfaceName: String?

  /// The worker's place, or nil when `RANK` is not set (a process training alone).
  static func current(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws -> WorkerEnvironment? {
    guard let rankText = environment["RANK"] else { return nil }
    func integer(_ name: String, _ text: String?, default value: Int? = nil) throws -> Int {
      guard let text else {
        if let value { return value }
        throw CommandFailure("RANK is set, so this is a data-parallel worker, but \(name) is not: export \(name) (torchrun does)")
      }
      guard let number = Int(text.trimmingCharacters(in: .whitespaces)) else {
        throw CommandFailure("\(name)=\(text) is not a whole number")
      }
      return number
    }
    let rank = try integer("RANK", rankText)
    let worldSize = try integer("WORLD_SIZE", environment["WORLD_SIZE"])
    guard worldSize >= 1 && worldSize <= 65536 else { throw CommandFailure("WORLD_SIZE=\(worldSize) must be between 1 and 65536") }
    guard (0..<worldSize).contains(rank) else { throw CommandFailure("RANK=\(rank) must be in 0..<WORLD_SIZE (\(worldSize))") }
    let localRank = try integer("LOCAL_RANK", environment["LOCAL_RANK"], default: rank)
    let localWorldSize = try integer("LOCAL_WORLD_SIZE", environment["LOCAL_WORLD_SIZE"], default: worldSize)
    guard (0..<localWorldSize).contains(localRank), localWorldSize <= worldSize else {
      throw CommandFailure("LOCAL_RANK=\(localRank) and LOCAL_WORLD_SIZE=\(localWorldSize) must satisfy 0 <= LOCAL_RANK < LOCAL_WORLD_SIZE <= WORLD_SIZE (\(worldSize))")
    }
    let address = environment["MASTER_ADDR"] ?? "127.0.0.1"
    guard !address.isEmpty else { throw CommandFailure("MASTER_ADDR is empty: set it to rank 0's host name or address") }
    let port = try integer("MASTER_PORT", environment["MASTER_PORT"], default: worldSize == 1 ? 29500 : nil)
    guard (1...65535).contains(port) else { throw CommandFailure("MASTER_PORT=\(port) must be between 1 and 65535") }
    let interface = environment["GLOO_SOCKET_IFNAME"].flatMap { $0.isEmpty ? nil : $0 }
    return WorkerEnvironment(
      rank: rank, worldSize: worldSize, localRank: localRank, localWorldSize: localWorldSize, masterAddress: address, masterPort: port,
      interfaceName: interface)
  }

  /// Whether every rank runs on this machine (Gloo then binds to the loopback address).
  var isLoopback: Bool { ["127.0.0.1", "localhost", "::1"].contains(masterAddress) }

  /// Joins the group of all ranks; NCCL's collectives run on `device` (this worker's GPU).
  func join(backend: ProcessGroup.Backend, timeout: Duration, device: Device = .cpu) throws -> ProcessGroup {
    guard ProcessGroup.isAvailable(backend) else {
      throw CommandFailure(
        backend == .nccl
          ? "--backend nccl needs a CUDA libtorch (this one is a CPU build): use --backend gloo"
          : "this libctorch was built without c10d's Gloo headers: install libgloo-dev and run Scripts/setup.sh again")
    }
    do {
      return try ProcessGroup(
        backend: backend, storeHost: masterAddress, storePort: masterPort, rank: rank, worldSize: worldSize, timeout: timeout,
        localHost: isLoopback && interfaceName == nil ? "127.0.0.1" : nil, interfaceName: interfaceName,
        device: backend == .nccl ? device : .cpu)
    } catch {
      throw CommandFailure(
        "\(error). Check that all \(worldSize) workers are started with the same WORLD_SIZE, that MASTER_ADDR (\(masterAddress)) reaches rank 0's machine, and that MASTER_PORT (\(masterPort)) is free there")
    }
  }
}
