import COCOEval
import Detectors
import Foundation
import Torch
import TorchNN

/// What a trainer does differently in a data-parallel run: rank 0's state goes to every rank at the
/// start, gradients and logged losses are averaged every step, evaluation detections are gathered to
/// rank 0, and only rank 0 writes the run folder.
public final class DataParallel {
  public let group: ProcessGroup
  /// Averages the gradients during the backward pass (DDP's bucketed all-reduce, overlapped).
  public let reducer: GradientReducer

  public var rank: Int { group.rank }
  public var worldSize: Int { group.worldSize }

  init(group: ProcessGroup, parameters: [Tensor]) throws {
    self.group = group
    reducer = try GradientReducer(group: group, parameters: parameters)
  }

  /// Copies rank 0's weights and buffers into every rank's detector (in place), so that all start equal.
  func broadcastWeights(of detector: any Detector) throws {
    let tensors = detector.stateDict().sorted { $0.key < $1.key }.map(\.tensor)
    try withNoGrad { try group.broadcast(tensors, from: 0) }
  }

  /// Rank 0's value of something encodable, on every rank.
  func broadcast<Value: Codable>(_ value: Value) throws -> Value {
    let bytes = try group.broadcast(bytes: rank == 0 ? Array(JSONEncoder().encode(value)) : [], from: 0)
    return try JSONDecoder().decode(Value.self, from: Data(bytes))
  }

  /// Rank 0's tensors (a state dict), on every rank.
  func broadcast(stateDict: [String: Tensor]) throws -> [String: Tensor] {
    let bytes = try group.broadcast(bytes: rank == 0 ? Array(SafeTensors.encode(stateDict)) : [], from: 0)
    return bytes.isEmpty ? [:] : try SafeTensors.decode(Data(bytes)).tensors
  }

  /// Sums of per-rank numbers (the loss terms, images), on every rank.
  func sum(_ values: [Double]) throws -> [Double] {
    let tensor = Tensor(values, shape: [values.count])
    try group.allReduce([tensor])
    return tensor.asArray(Double.self)
  }

  /// Every rank's detections, in rank order (on every rank).
  func gather(_ detections: [DetectedBox]) throws -> [DetectedBox] {
    try group.allGather(bytes: Array(JSONEncoder().encode(detections))).flatMap {
      try JSONDecoder().decode([DetectedBox].self, from: Data($0))
    }
  }

  /// Every rank's generator state, keyed `default_generator` (rank 0) and `rank_R_generator`.
  func gatherGeneratorStates() throws -> [String: Tensor] {
    let states = try group.allGather(Generator.currentState)
    var named: [String: Tensor] = [:]
    for (rank, state) in states.enumerated() { named[Self.generatorKey(rank: rank)] = state }
    return named
  }

  static func generatorKey(rank: Int) -> String { rank == 0 ? "default_generator" : "rank_\(rank)_generator" }

  /// After a collective failed: which ranks are gone. Every survivor checks in at the store and waits up
  /// to `patience` for the others; those that never do are named. When the store itself is gone, rank 0
  /// (which serves it) is.
  public static func lostRanks(in group: ProcessGroup, after error: Error, patience: Duration = .seconds(15)) -> String {
    let prefix = "failure/"
    let (rank, worldSize) = (group.rank, group.worldSize)
    do {
      try group.storeSet(prefix + "\(rank)", "alive")
      let deadline = ContinuousClock.now + patience
      var missing = Array(0..<worldSize)
      while ContinuousClock.now < deadline {
        missing = try missing.filter { try !group.storeHas(prefix + "\($0)") }
        if missing.isEmpty { break }
        Thread.sleep(forTimeInterval: 0.2)
      }
      if missing.isEmpty { return "every rank answered after the failure (\(error))" }
      return "lost rank\(missing.count == 1 ? "" : "s") \(missing.map(String.init).joined(separator: ", ")) of \(worldSize) (\(error))"
    } catch {
      return "lost rank 0 of \(worldSize), which served the store at \(group.storeAddress) (\(error))"
    }
  }
}
