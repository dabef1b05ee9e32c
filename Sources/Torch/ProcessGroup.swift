import CTorch
import Foundation

/// A failed collective or rendezvous: a lost peer, a timeout, an address that cannot be reached.
public struct DistributedError: Error, CustomStringConvertible, Sendable {
  public let description: String
  public init(_ description: String) { self.description = description }
}

/// A group of processes that train one model together, on libtorch's c10d: rank 0 serves a TCP
/// store that every rank meets at, then the collectives run over Gloo (CPU tensors) or NCCL (CUDA
/// tensors). Every rank must call the same collectives in the same order with tensors of the same
/// shapes; a collective returns when all have joined, or throws when a peer is lost or the timeout passes.
public final class ProcessGroup: @unchecked Sendable {
  /// A collective's backend.
  public enum Backend: String, Sendable, CaseIterable {
    case gloo, nccl
  }

  public let backend: Backend
  public let rank: Int
  public let worldSize: Int
  /// Where the collectives' tensors must be: the CPU for Gloo, this process's GPU for NCCL (which
  /// reduces GPU tensors only). Tensors elsewhere are copied there and back.
  public let device: Device
  /// Where the store is served (`host:port`), for messages.
  public let storeAddress: String
  let handle: ctorch_process_group

  /// Whether the shim can create a group with `backend` (Gloo needs the shim built with Gloo's
  /// headers; NCCL a CUDA libtorch).
  public static func isAvailable(_ backend: Backend) -> Bool {
    Torch.ensureCompatibleShim()
    return ctorch_distributed_available(backend.rawValue)
  }

  /// Joins the group; returns when all `worldSize` ranks have joined (or throws after `timeout`).
  /// - Parameters:
  ///   - storeHost, storePort: where rank 0 serves the store (`MASTER_ADDR`, `MASTER_PORT`).
  ///   - localHost: the address Gloo binds to (nil: this machine's host name's address).
  ///   - interfaceName: a network interface for Gloo instead (`GLOO_SOCKET_IFNAME`).
  ///   - device: where the collectives run (`device` above); NCCL needs this process's GPU.
  public init(
    backend: Backend, storeHost: String, storePort: Int, rank: Int, worldSize: Int, timeout: Duration,
    localHost: String? = nil, interfaceName: String? = nil, device: Device = .cpu
  ) throws {
    Torch.ensureCompatibleShim()
    let milliseconds = timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000
    var out: ctorch_process_group?
    let status = ctorch_process_group_create(
      backend.rawValue, storeHost, Int32(clamping: storePort), Int32(clamping: rank), Int32(clamping: worldSize), milliseconds,
      localHost, interfaceName, &out)
    guard status == CTORCH_OK, let out else {
      throw DistributedError("rank \(rank) of \(worldSize) could not join the \(backend.rawValue) group at \(storeHost):\(storePort): \(Self.lastError())")
    }
    self.backend = backend
    self.device = device
    self.rank = rank
    self.worldSize = worldSize
    storeAddress = "\(storeHost):\(storePort)"
    handle = out
  }

  deinit { ctorch_process_group_free(handle) }

  /// The group of the data-parallel run this process trains in, set by the trainer for the length of
  /// the run: the loss normalizers (the box count) are averaged over it. Nil outside such a run.
  nonisolated(unsafe) public static var current: ProcessGroup?

  /// How values are combined.
  public enum Reduction: Int32, Sendable {
    case sum = 0, max = 1, min = 2
  }

  /// A collective under way; `wait()` returns when it is done on this rank.
  public final class Work: @unchecked Sendable {
    let handle: ctorch_work
    let tensors: [Tensor]
    init(handle: ctorch_work, tensors: [Tensor]) {
      self.handle = handle
      self.tensors = tensors
    }
    deinit { ctorch_work_free(handle) }

    public func wait() throws {
      guard ctorch_work_wait(handle) == CTORCH_OK else { throw DistributedError(ProcessGroup.lastError()) }
    }
  }

  /// Starts reducing `tensor` in place across ranks (each rank's ends up with the reduction).
  public func startAllReduce(_ tensor: Tensor, _ reduction: Reduction = .sum) throws -> Work {
    var work: ctorch_work?
    let status = withHandles([tensor]) { ctorch_all_reduce(handle, $0, $1, reduction.rawValue, &work) }
    guard status == CTORCH_OK, let work else { throw DistributedError(Self.lastError()) }
    return Work(handle: work, tensors: [tensor])
  }

  /// Reduces `tensors` in place across ranks and waits (those of one type travel as one flat tensor).
  public func allReduce(_ tensors: [Tensor], _ reduction: Reduction = .sum) throws {
    try coalesced(tensors) { flat in
      let status = withHandles([flat]) { ctorch_all_reduce(handle, $0, $1, reduction.rawValue, nil) }
      guard status == CTORCH_OK else { throw DistributedError(Self.lastError()) }
    }
  }

  /// The sum (or max, min) of one number over the ranks.
  public func allReduce(_ value: Double, _ reduction: Reduction = .sum) throws -> Double {
    let tensor = Tensor([value], shape: [1])
    try allReduce([tensor], reduction)
    return tensor.item(Double.self)
  }

  /// Copies rank `root`'s tensors into every rank's, in place (those of one type travel as one flat tensor).
  public func broadcast(_ tensors: [Tensor], from root: Int = 0) throws {
    try coalesced(tensors) { flat in
      let status = withHandles([flat]) { ctorch_broadcast(handle, $0, $1, Int32(root)) }
      guard status == CTORCH_OK else { throw DistributedError(Self.lastError()) }
    }
  }

  /// Runs `collective` on one contiguous flat tensor per element type holding `tensors`, then copies
  /// the results back (c10d's lists mean one tensor per device, all of one shape, not a batch).
  private func coalesced(_ tensors: [Tensor], _ collective: (Tensor) throws -> Void) throws {
    var byType: [DType: [Tensor]] = [:]
    var types: [DType] = []
    for tensor in tensors {
      if byType[tensor.dtype] == nil { types.append(tensor.dtype) }
      byType[tensor.dtype, default: []].append(tensor)
    }
    for type in types {
      let group = byType[type]!
      let flat =
        group.count == 1 && group[0].isContiguous && group[0].device == device
        ? group[0] : Tensor.cat(group.map { $0.reshaped([-1]) }).to(device: device)
      try collective(flat)
      guard flat !== group[0] else { continue }
      for (tensor, piece) in zip(group, flat.unflattened(into: group.map(\.shape))) { tensor.copy(from: piece) }
    }
  }

  /// Every rank's `tensor` (the same shape and type on every rank), in rank order.
  public func allGather(_ tensor: Tensor) throws -> [Tensor] {
    final class Collector { var tensors: [Tensor] = [] }
    let collector = Collector()
    let staged = tensor.to(device: device)
    let status = withExtendedLifetime(staged) {
      ctorch_all_gather(handle, staged.handle, { context, out in
        Unmanaged<Collector>.fromOpaque(context!).takeUnretainedValue().tensors.append(Tensor(handle: out!))
      }, Unmanaged.passUnretained(collector).toOpaque())
    }
    guard status == CTORCH_OK else { throw DistributedError(Self.lastError()) }
    return collector.tensors.map { $0.to(device: tensor.device) }
  }

  /// Every rank's bytes, in rank order (of any length: the lengths are gathered first).
  public func allGather(bytes: [UInt8]) throws -> [[UInt8]] {
    let lengths = try allGather(Tensor([Int64(bytes.count)], shape: [1])).map { Int($0.item(Int64.self)) }
    let longest = lengths.max() ?? 0
    let padded = Tensor(bytes + [UInt8](repeating: 0, count: longest - bytes.count), shape: [longest])
    return try zip(allGather(padded), lengths).map { tensor, length in Array(tensor.bytes().prefix(length)) }
  }

  /// Rank `root`'s bytes, on every rank.
  public func broadcast(bytes: [UInt8], from root: Int = 0) throws -> [UInt8] {
    let length = Tensor([Int64(bytes.count)], shape: [1])
    try broadcast([length], from: root)
    let count = Int(length.item(Int64.self))
    guard count > 0 else { return [] }
    let buffer = Tensor(rank == root ? bytes : [UInt8](repeating: 0, count: count), shape: [count])
    try broadcast([buffer], from: root)
    return buffer.bytes()
  }

  /// Returns when every rank has reached it.
  public func barrier() throws {
    guard ctorch_barrier(handle) == CTORCH_OK else { throw DistributedError(Self.lastError()) }
  }

  /// Sets a key in the group's store (served by rank 0).
  public func storeSet(_ key: String, _ value: String) throws {
    guard ctorch_store_set(handle, key, value) == CTORCH_OK else { throw DistributedError(Self.lastError()) }
  }

  /// Whether a key is in the group's store.
  public func storeHas(_ key: String) throws -> Bool {
    var found = false
    guard ctorch_store_has(handle, key, &found) == CTORCH_OK else { throw DistributedError(Self.lastError()) }
    return found
  }

  /// libtorch's message, first sentence, without Gloo's source location (`[.../pair.cc:553] `).
  static func lastError() -> String {
    var message = String(cString: ctorch_last_error()).split(separator: "\n").first.map(String.init) ?? "unknown error"
    if message.hasPrefix("["), let close = message.range(of: "] ") { message = String(message[close.upperBound...]) }
    if let end = message.range(of: ". ") { message = String(message[..<end.lowerBound]) }
    return message
  }
}

/// DistributedDataParallel's engine (c10d's `Reducer`): it hooks the parameters' gradient accumulators
/// and all-reduces buckets of gradients while the backward pass is still running, so that
/// communication overlaps computation; when `backward()` returns, every parameter's `grad` is the
/// average over the ranks. Parameters the loss does not reach count as zero gradients.
public final class GradientReducer: @unchecked Sendable {
  let handle: ctorch_reducer
  public let group: ProcessGroup

  /// - Parameters:
  ///   - parameters: the trainable parameters, in registration order (the same on every rank).
  ///   - bucketBytes, firstBucketBytes: DDP's defaults, 25 MiB and 1 MiB (a small first bucket starts
  ///     communication early).
  public init(group: ProcessGroup, parameters: [Tensor], bucketBytes: Int = 25 << 20, firstBucketBytes: Int = 1 << 20) throws {
    var out: ctorch_reducer?
    let status = withHandles(parameters) {
      ctorch_reducer_create(group.handle, $0, $1, Int64(bucketBytes), Int64(firstBucketBytes), true, &out)
    }
    guard status == CTORCH_OK, let out else { throw DistributedError(ProcessGroup.lastError()) }
    handle = out
    self.group = group
  }

  deinit { ctorch_reducer_free(handle) }

  /// Call before each backward pass, with what it starts from (the loss).
  public func prepareForBackward(_ outputs: [Tensor]) throws {
    let status = withHandles(outputs) { ctorch_reducer_prepare_for_backward(handle, $0, $1) }
    guard status == CTORCH_OK else { throw DistributedError(ProcessGroup.lastError()) }
  }
}
