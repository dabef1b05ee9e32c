import Detection
import Detectors
import Foundation
import Torch
import TorchNN

/// ImageNet ResNet weights for a detector's backbone, in the layouts users download: torchvision's
/// `.pth` (a bare state dict, or one under "model" or "state_dict"), timm's safetensors (torchvision's
/// names), and transformers' `ResNetModel` / `ResNetForImageClassification` (a safetensors file or
/// its folder), renamed by `BackboneKeys`. The classifier (`fc`, `classifier`) is left out; every
/// tensor of the backbone must be given with its shape, and nothing else may be left over.
public enum BackboneWeights {
  /// What a load did: the tensors placed, the layout read, the classifier left out.
  public struct Report: Sendable {
    public var loaded: Int
    public var layout: String
    /// The classifier's tensors, which a detector does not use.
    public var classifier: [String]
  }

  /// Loads `source` into `resnet`; throws `CheckpointError` naming the file and what does not fit.
  @discardableResult
  public static func load(_ source: URL, into resnet: ResNet) throws -> Report {
    var file = source
    var isFolder: ObjCBool = false
    guard FileManager.default.fileExists(atPath: source.path, isDirectory: &isFolder) else {
      throw CheckpointError(path: source.path, problem: "does not exist; give a torchvision .pth or a timm / transformers .safetensors")
    }
    if isFolder.boolValue { file = source.appendingPathComponent("model.safetensors") }
    let tensors: [String: Tensor]
    if file.pathExtension == "safetensors" {
      tensors = try SafeTensors.load(contentsOf: file).tensors
    } else {
      tensors = try PyTorchFile.stateDict(of: PyTorchFile.load(contentsOf: file), path: file.path)
    }
    var layout = "torchvision"
    var weights: [String: Tensor] = [:]
    var classifier: [String] = []
    for (rawKey, tensor) in tensors where !rawKey.hasSuffix("num_batches_tracked") {
      var key = rawKey
      for prefix in ["module.", "backbone.body.", "backbone."] where key.hasPrefix(prefix) { key.removeFirst(prefix.count) }
      if let range = key.range(of: "embedder.embedder.") ?? key.range(of: "encoder.stages.") {
        layout = "transformers"
        key = BackboneKeys.fromTransformersResNet.rename(String(key[range.lowerBound...]))
      }
      if key.hasPrefix("fc.") || key.hasPrefix("classifier.") {
        classifier.append(rawKey)
        continue
      }
      weights[key] = tensor
    }
    let report = try resnet.load(stateDict: weights, strict: false)
    guard report.isComplete else {
      throw CheckpointError(
        path: file.path,
        problem: "does not fit the backbone (\(layout) layout read):\n\(report.summaryNaming(atMost: 6))\nGive the weights of the ResNet the config names (backbone.blocks_per_stage, stage_channels, bottleneck)")
    }
    return Report(loaded: report.loaded.count, layout: layout, classifier: classifier.sorted())
  }
}
