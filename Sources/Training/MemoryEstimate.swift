import Detection
import Detectors
import Foundation
import Torch

/// A lower bound of the memory one forward pass (and, training, its backward pass and the optimizer)
/// of a detector needs at an input size, checked against what the machine has before any work starts.
///
/// It counts only what cannot be avoided: the input batch; the ResNet's convolution outputs (all of
/// those of trainable blocks when training, since the backward pass needs them; the largest block's
/// input and output at inference); the encoder's attention weights for the families with global
/// self-attention over stride-32 tokens (DETR, Conditional DETR, SMCA-DETR, SD-DETR: `heads × N²` per image and
/// layer, twice at inference, N = ⌈H/32⌉·⌈W/32⌉); the weights, and when training their gradients and Adam's two moments.
/// A real run needs more (batch norm and activation outputs, the decoder, the matcher), so a size it
/// refuses cannot run, and a size it accepts may still not: then libtorch's allocation failure is
/// reported with the size it asked for.
public struct MemoryEstimate: Sendable, CustomStringConvertible {
  public var parts: [(name: String, bytes: Double)] = []
  public var total: Double { parts.reduce(0) { $0 + $1.bytes } }

  public var description: String {
    "at least \(Self.text(total)) (" + parts.filter { $0.bytes > 0 }.map { "\($0.name) \(Self.text($0.bytes))" }.joined(separator: ", ") + ")"
  }

  static func text(_ bytes: Double) -> String {
    bytes >= Double(1 << 30) ? String(format: "%.1f GiB", bytes / Double(1 << 30)) : String(format: "%.0f MiB", bytes / Double(1 << 20))
  }

  /// The lower bound for `batch` images of `height` × `width` pixels (after resizing and padding).
  public static func lowerBound(for detector: any Detector, batch: Int, height: Int, width: Int, training: Bool) -> MemoryEstimate {
    let float = 4.0
    let images = Double(batch)
    let pixels = Double(height) * Double(width)
    var estimate = MemoryEstimate()
    estimate.parts.append(("input", images * 3 * pixels * float))
    if let resnet = detector.backboneNetwork {
      var kept = 0.0
      var largest = 0.0
      let stem = Double(resnet.conv1.weight.size(0))
      let stemTrainable = resnet.conv1.weight.requiresGrad
      let stemOutput = images * stem * pixels / 4 * float
      largest = stemOutput + images * 3 * pixels * float
      if training && stemTrainable { kept += stemOutput + stemOutput / 4 }
      var input = stemOutput / 4
      for (index, stage) in resnet.stages.enumerated() {
        let stride = Double(1 << (index + 2))
        let area = images * pixels / (stride * stride)
        let channels = Double(resnet.stageChannels[index])
        for block in stage {
          let output = area * channels * float
          largest = Swift.max(largest, input + output)
          if training && block.parameters().contains(where: \.requiresGrad) {
            // A bottleneck's 1×1 and 3×3 convolutions are a quarter as wide as its output; a basic block's as wide.
            let inner = block.isBottleneck ? 2 * channels / 4 : channels
            kept += area * (inner + channels) * float
          }
          input = output
        }
      }
      estimate.parts.append(("backbone activations", training ? Swift.max(kept, largest) : largest))
    }
    if [.detr, .conditionalDETR, .smcaDETR, .sdDETR].contains(detector.kind),
      let object = try? JSONSerialization.jsonObject(with: detector.encodedConfig()) as? [String: Any],
      let transformer = object["transformer"] as? [String: Any]
    {
      let heads = Double((transformer["encoder_heads"] as? Int) ?? (transformer["heads"] as? Int) ?? 8)
      let layers = Double((transformer["encoder_layers"] as? Int) ?? 6)
      let tokens = ((Double(height) / 32).rounded(.up)) * ((Double(width) / 32).rounded(.up))
      // A layer's scores and their softmax are alive together; training keeps each layer's softmax for the backward pass.
      let perLayer = images * heads * tokens * tokens * float
      estimate.parts.append(("encoder attention", training ? perLayer * (layers + 1) : 2 * perLayer))
    }
    let weights = detector.parameters().reduce(0.0) { $0 + Double($1.elementCount) } * float
    let trainable = detector.parameters().filter(\.requiresGrad).reduce(0.0) { $0 + Double($1.elementCount) } * float
    estimate.parts.append(("weights" + (training ? ", gradients and optimizer state" : ""), weights + (training ? 3 * trainable : 0)))
    return estimate
  }

  /// Memory the kernel can give this process now: available memory plus free swap (/proc/meminfo);
  /// nil where that file cannot be read.
  public static var availableBytes: Double? {
    guard let text = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8) else { return nil }
    var values: [String: Double] = [:]
    for line in text.split(separator: "\n") {
      let fields = line.split(whereSeparator: { $0 == ":" || $0 == " " })
      if fields.count >= 2, let kilobytes = Double(fields[1]) { values[String(fields[0])] = kilobytes * 1024 }
    }
    guard let available = values["MemAvailable"] else { return nil }
    return available + (values["SwapFree"] ?? 0)
  }

  /// Throws, naming the estimate and what is available, when the lower bound exceeds the machine's memory.
  /// `what` says what was asked ("batch 2 at 800×1333, training"), `advice` what to change.
  public func check(_ what: String, advice: String, available: Double? = MemoryEstimate.availableBytes) throws {
    guard let available, total > available else { return }
    throw MemoryEstimateError(
      description: "\(what) needs \(self), more than the \(Self.text(available)) this machine has available: \(advice)")
  }
}

/// A run refused before it started because it cannot fit in memory.
public struct MemoryEstimateError: Error, CustomStringConvertible, Sendable {
  public let description: String
}
