import Detection
import Detectors
import Torch
import TorchNN

/// Whether a device computes what the CPU computes: each family's forward pass, losses and gradients
/// with the same weights on the same batch, and the fused deformable attention against the composed
/// one. What `detr check-device` runs; on a GPU it is the check that the CUDA paths are right.
public enum DeviceParity {
  /// One comparison: the largest absolute difference between the device's values and the CPU's (or the
  /// reference's), over max(1, the largest reference magnitude), against the tolerance.
  public struct Check: Sendable, Equatable {
    public var name: String
    public var difference: Double
    public var tolerance: Double
    public var passed: Bool { difference <= tolerance }

    public init(name: String, difference: Double, tolerance: Double) {
      (self.name, self.difference, self.tolerance) = (name, difference, tolerance)
    }

    /// Compares `value` (any device) with `reference`.
    public init(name: String, value: Tensor, reference: Tensor, tolerance: Double) {
      let (a, b) = (value.to(dtype: .float64, device: .cpu), reference.to(dtype: .float64, device: .cpu))
      precondition(a.shape == b.shape, "DeviceParity: \(name) has shape \(a.shape) here and \(b.shape) in the reference")
      let scale = Swift.max(1, b.elementCount == 0 ? 0 : b.abs().max().item(Double.self))
      let difference = a.elementCount == 0 ? 0 : (a - b).abs().max().item(Double.self) / scale
      self.init(name: name, difference: difference.isNaN ? .infinity : difference, tolerance: tolerance)
    }
  }

  /// A padded batch of two 96×128 images (the second padded right and below) with two boxes each.
  public static func sampleBatch(seed: UInt64 = 7) -> DetectorBatch {
    let mask = Tensor.zeros([2, 96, 128], dtype: .bool)
    mask[1, 80..., .all] = Tensor(scalar: true)
    mask[1, .all, 112...] = Tensor(scalar: true)
    let images = Generator(seed: seed).withCurrent { Tensor.randn([2, 3, 96, 128]) }.filling(where: mask.unsqueezed(dim: 1), with: 0)
    let targets = [
      MatchTarget(labels: Tensor([0, 1] as [Int]), boxes: Tensor([0.3, 0.3, 0.2, 0.2, 0.6, 0.6, 0.3, 0.4] as [Float], shape: [2, 4])),
      MatchTarget(labels: Tensor([1, 0] as [Int]), boxes: Tensor([0.5, 0.4, 0.4, 0.3, 0.2, 0.7, 0.2, 0.2] as [Float], shape: [2, 4])),
    ]
    return DetectorBatch(images: images, paddingMask: mask, imageSizes: [(96, 128), (80, 112)], targets: targets)
  }

  /// A family's `preset` (initialized from `seed`) in evaluation mode: its losses and their gradients on
  /// the CPU, then on `device` with the same weights and batch. The detector is left on `device`.
  public static func compare(
    kind: ModelKind, preset: String = "small", on device: Device, tolerance: Double = 1e-4, seed: UInt64 = 1
  ) throws -> [Check] {
    let detector = try Generator(seed: seed).withCurrent { try DetectorFactory.make(kind: kind, preset: preset) }
    detector.eval()
    let batch = sampleBatch()
    func run() throws -> (terms: [(String, Tensor)], total: Tensor, gradients: [(String, Tensor)]) {
      for parameter in detector.parameters() { parameter.grad = nil }
      let losses = try detector.losses(for: batch.to(device: detector.device))
      losses.total.backward()
      let gradients = detector.namedParameters().compactMap { name, tensor in tensor.grad.map { (name, $0.to(device: .cpu)) } }
      return (losses.terms.map { ($0.name, $0.value.detached().to(device: .cpu)) }, losses.total.detached().to(device: .cpu), gradients)
    }
    let reference = try run()
    detector.to(device: device)
    let result = try run()
    var checks = [Check(name: "\(kind.rawValue) total loss", value: result.total, reference: reference.total, tolerance: tolerance)]
    let referenceTerms = Dictionary(uniqueKeysWithValues: reference.terms)
    for (name, value) in result.terms {
      guard let expected = referenceTerms[name] else { continue }
      checks.append(Check(name: "\(kind.rawValue) \(name)", value: value, reference: expected, tolerance: tolerance))
    }
    // The gradients as one vector: each parameter's own scale would let tiny gradients fail on rounding.
    let referenceGradients = Dictionary(uniqueKeysWithValues: reference.gradients)
    let paired = result.gradients.compactMap { name, value in referenceGradients[name].map { (value.reshaped(-1), $0.reshaped(-1)) } }
    if !paired.isEmpty {
      checks.append(
        Check(
          name: "\(kind.rawValue) gradients (\(paired.count) parameters)", value: Tensor.cat(paired.map(\.0)),
          reference: Tensor.cat(paired.map(\.1)), tolerance: tolerance))
    }
    return checks
  }

  /// Dropout in training on `device`: the mask is decided by the calling thread's generator (the same
  /// seed gives the same mask, another seed another one), a share p is dropped, the rest scaled by 1/(1-p).
  public static func checkDropout(on device: Device, probability: Double = 0.1) -> [Check] {
    let ones = Tensor.ones([512, 1024], device: device)
    func dropped(seed: UInt64) -> Tensor {
      Generator(seed: seed).withCurrent { Functional.dropout(ones, probability: probability, training: true) }.to(device: .cpu)
    }
    let (first, again, other) = (dropped(seed: 9), dropped(seed: 9), dropped(seed: 10))
    let droppedShare = (first .== 0).to(.float64).mean().item(Double.self)
    let differing = ((first .== 0) .!= (other .== 0)).to(.float64).mean().item(Double.self)
    let keptValue = first.max().item(Double.self)
    return [
      Check(name: "dropout on \(device): the same seed gives the same mask", value: again, reference: first, tolerance: 0),
      // Two independent masks differ in 2p(1-p) of the elements (18% at p = 0.1).
      Check(name: "dropout on \(device): another seed gives another mask", difference: Swift.max(0, 0.1 - differing), tolerance: 0),
      Check(name: "dropout on \(device): share dropped minus p", difference: abs(droppedShare - probability), tolerance: 0.005),
      Check(name: "dropout on \(device): kept values scaled by 1/(1-p)", difference: abs(keptValue - 1 / (1 - probability)), tolerance: 1e-6),
    ]
  }

  /// The fused deformable attention on `device` (forward, and the gradients of value, locations and
  /// weights) against the composed version on the same device, and the device's fused output against
  /// the CPU's. Four levels, 8 heads of 32 channels, 4 points (Deformable DETR's shape), 300 queries.
  public static func compareDeformableAttention(on device: Device, tolerance: Double = 1e-4, seed: UInt64 = 3) -> [Check] {
    let shapes = [(height: 24, width: 32), (height: 12, width: 16), (height: 6, width: 8), (height: 3, width: 4)]
    let starts = shapes.indices.map { level in shapes[..<level].reduce(0) { $0 + $1.height * $1.width } }
    let tokens = shapes.reduce(0) { $0 + $1.height * $1.width }
    let (batch, queries, heads, channels, points) = (2, 300, 8, 32, 4)
    let (value, locations, weights) = Generator(seed: seed).withCurrent {
      (
        Tensor.randn([batch, tokens, heads, channels]),
        // Some samples fall outside the maps, where the kernels read zeros.
        Tensor.rand([batch, queries, heads, shapes.count, points, 2]) * 1.2 - 0.1,
        Tensor.rand([batch, queries, heads, shapes.count, points]).softmax(dim: -1)
      )
    }
    let upstream = Generator(seed: seed + 1).withCurrent { Tensor.randn([batch, queries, heads * channels]) }
    let levels = FeatureLevels(shapes: shapes)
    func run(fused: Bool, on device: Device) -> [Tensor] {
      let inputs = [value, locations, weights].map { $0.to(device: device, copy: true).requiringGrad() }
      let output =
        fused
        ? Functional.fusedDeformableAttention(value: inputs[0], shapes: shapes, starts: starts, locations: inputs[1], weights: inputs[2])
        : MultiScaleDeformableAttention.sampleComposed(value: inputs[0], levels: levels, locations: inputs[1], weights: inputs[2])
      (output * upstream.to(device: device)).sum().backward()
      return [output.detached()] + inputs.map { $0.grad ?? $0.zerosLike() }
    }
    let names = ["output", "value gradient", "location gradient", "weight gradient"]
    var checks: [Check] = []
    let composed = run(fused: false, on: device)
    if Functional.isFusedDeformableAttentionAvailable(on: device) {
      let fused = run(fused: true, on: device)
      for (index, name) in names.enumerated() {
        checks.append(Check(name: "fused attention on \(device) vs composed: \(name)", value: fused[index], reference: composed[index], tolerance: tolerance))
      }
      if device != .cpu {
        let cpu = run(fused: true, on: .cpu)
        for (index, name) in names.enumerated() {
          checks.append(Check(name: "fused attention on \(device) vs the CPU: \(name)", value: fused[index], reference: cpu[index], tolerance: tolerance))
        }
      }
    } else {
      checks.append(Check(name: "fused attention on \(device): not built into this shim", difference: .infinity, tolerance: tolerance))
    }
    return checks
  }
}
