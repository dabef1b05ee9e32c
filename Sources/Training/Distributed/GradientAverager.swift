import Foundation
import Torch

/// Averages the gradients of every rank after the backward pass, as PyTorch's DistributedDataParallel
/// does: the parameters go into buckets of at most `bucketBytes` (in reverse order of registration,
/// roughly the order the backward pass finishes them), each bucket is flattened into one tensor and
/// all-reduced; all buckets are started before the first is waited for, so the transfers overlap one
/// another. A parameter without a gradient on a rank counts as a zero gradient there (DDP's
/// `find_unused_parameters`), so that every rank sends the same buckets.
public final class GradientAverager {
  public let group: ProcessGroup
  /// The trainable parameters, bucketed.
  let buckets: [[Tensor]]
  /// Seconds the last `average()` took, from the first bucket's start to the last one's copy back.
  public private(set) var lastSeconds = 0.0
  /// Seconds of all `average()` calls so far.
  public private(set) var totalSeconds = 0.0

  /// DistributedDataParallel's default bucket size, 25 MiB.
  public static let defaultBucketBytes = 25 << 20

  public init(parameters: [Tensor], group: ProcessGroup, bucketBytes: Int = GradientAverager.defaultBucketBytes) {
    self.group = group
    var buckets: [[Tensor]] = []
    var current: [Tensor] = []
    var bytes = 0
    for parameter in parameters.reversed() {
      let size = parameter.elementCount * parameter.dtype.byteSize
      if !current.isEmpty && bytes + size > bucketBytes {
        buckets.append(current)
        (current, bytes) = ([], 0)
      }
      current.append(parameter)
      bytes += size
    }
    if !current.isEmpty { buckets.append(current) }
    self.buckets = buckets
  }

  /// Replaces every parameter's gradient by its average over the ranks.
  public func average() throws {
    let start = DispatchTime.now()
    let divisor = Double(group.worldSize)
    var pending: [(work: ProcessGroup.Work, flat: Tensor, bucket: [Tensor])] = []
    for bucket in buckets {
      let flat = Tensor.cat(bucket.map { ($0.grad ?? $0.zerosLike()).reshaped([-1]) })
      pending.append((try group.startAllReduce(flat), flat, bucket))
    }
    for (work, flat, bucket) in pending {
      try work.wait()
      flat /= divisor
      for (parameter, averaged) in zip(bucket, flat.unflattened(into: bucket.map(\.shape))) {
        if let grad = parameter.grad { grad.copy(from: averaged) } else { parameter.grad = averaged.clone() }
      }
    }
    lastSeconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
    totalSeconds += lastSeconds
  }
}
