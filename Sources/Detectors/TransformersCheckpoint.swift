import Detection
import Foundation
import JSONMessages
import Torch
import TorchNN

/// A Hugging Face `transformers` checkpoint folder, as `save_pretrained` writes it:
/// `config.json` and `model.safetensors`.
public struct TransformersCheckpoint: @unchecked Sendable {
  public let folder: URL
  public let config: [String: Any]
  public let tensors: [String: Tensor]

  public init(folder: URL) throws {
    self.folder = folder
    let configURL = folder.appendingPathComponent("config.json")
    guard let data = try? Data(contentsOf: configURL) else {
      throw CheckpointError(
        path: configURL.path, problem: "is missing or unreadable; a transformers checkpoint folder holds config.json and model.safetensors")
    }
    guard let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
      throw CheckpointError(path: configURL.path, problem: "is not a JSON object")
    }
    config = object
    let weightsURL = folder.appendingPathComponent("model.safetensors")
    guard FileManager.default.fileExists(atPath: weightsURL.path) else {
      throw CheckpointError(
        path: weightsURL.path, problem: "is missing; save the model with safe_serialization (the default) — .bin pickles are not loaded")
    }
    tensors = try SafeTensors.load(contentsOf: weightsURL).tensors
  }

  public var modelType: String? { config["model_type"] as? String }

  /// A config value, or a clear error naming the field.
  public func value<T>(_ key: String, as type: T.Type = T.self) throws -> T {
    guard let value = config[key] as? T else {
      throw CheckpointError(
        path: folder.appendingPathComponent("config.json").path, problem: "field '\(key)' is missing or not \(DecodingErrorText.kind(of: T.self))")
    }
    return value
  }

  public func value<T>(_ key: String, default fallback: T) throws -> T {
    guard let raw = config[key], !(raw is NSNull) else { return fallback }
    guard let value = raw as? T else {
      throw CheckpointError(path: folder.appendingPathComponent("config.json").path, problem: "field '\(key)' is not \(DecodingErrorText.kind(of: T.self))")
    }
    return value
  }

  /// Fails naming the field when it holds a value this package does not implement.
  public func require(_ key: String, in allowed: [String], default fallback: String) throws {
    let actual: String = try value(key, default: fallback)
    guard allowed.contains(actual) else {
      throw CheckpointError(
        path: folder.appendingPathComponent("config.json").path,
        problem: "field '\(key)' is \"\(actual)\", which swift-detr does not support (supported: \(allowed.joined(separator: ", ")))")
    }
  }

  /// The ResNet described by the config: a timm backbone name, or a transformers ResNetConfig.
  public func backboneConfig() throws -> BackboneConfig {
    let path = folder.appendingPathComponent("config.json").path
    let timm: Bool = try value("use_timm_backbone", default: false)
    if timm {
      let name: String = try value("backbone", default: "resnet50")
      let depths: [String: ResNet.Depth] = ["resnet18": .resNet18, "resnet34": .resNet34, "resnet50": .resNet50, "resnet101": .resNet101]
      guard let depth = depths[name] else {
        throw CheckpointError(
          path: path, problem: "field 'backbone' is \"\(name)\"; supported: \(depths.keys.sorted().joined(separator: ", "))")
      }
      return .resNet(depth, dilation: try value("dilation", default: false))
    }
    guard let resnet = config["backbone_config"] as? [String: Any] else {
      throw CheckpointError(path: path, problem: "field 'backbone_config' is missing (needed when use_timm_backbone is false)")
    }
    let type = resnet["model_type"] as? String ?? "resnet"
    guard type == "resnet" else {
      throw CheckpointError(path: path, problem: "field 'backbone_config.model_type' is \"\(type)\"; only resnet is supported")
    }
    for flag in ["downsample_in_first_stage", "downsample_in_bottleneck"] where (resnet[flag] as? Bool) == true {
      throw CheckpointError(
        path: path, problem: "field 'backbone_config.\(flag)' is true; only the torchvision layout (false) is supported")
    }
    let layerType = resnet["layer_type"] as? String ?? "bottleneck"
    guard layerType == "bottleneck" || layerType == "basic" else {
      throw CheckpointError(path: path, problem: "field 'backbone_config.layer_type' is \"\(layerType)\"; supported: basic, bottleneck")
    }
    return BackboneConfig(
      blocksPerStage: resnet["depths"] as? [Int] ?? [3, 4, 6, 3], stemChannels: resnet["embedding_size"] as? Int ?? 64,
      stageChannels: resnet["hidden_sizes"] as? [Int] ?? [256, 512, 1024, 2048], bottleneck: layerType == "bottleneck")
  }

  /// Number of object classes: the entries of `id2label`.
  public func classCount() throws -> Int {
    let labels: [String: Any] = try value("id2label", default: [:])
    return labels.isEmpty ? try value("num_labels", default: 2) : labels.count
  }
}

/// A checkpoint that cannot be used; names the file and says what is wrong.
public struct CheckpointError: Error, CustomStringConvertible, Sendable {
  public let path: String
  public let problem: String
  public init(path: String, problem: String) {
    self.path = path
    self.problem = problem
  }
  public var description: String { "\(path): \(problem)" }
}

/// Concatenates `<prefix>.q_proj.<w>`, `k_proj`, `v_proj` into PyTorch's packed
/// `<prefix>.in_proj_<w>` (rows q; k; v), for every prefix that has all three.
func packAttentionProjections(_ tensors: [String: Tensor]) -> [String: Tensor] {
  var result = tensors
  for (key, query) in tensors {
    guard let range = key.range(of: ".q_proj.") else { continue }
    let prefix = key[..<range.lowerBound]
    let suffix = key[range.upperBound...]
    guard let keyTensor = tensors["\(prefix).k_proj.\(suffix)"], let valueTensor = tensors["\(prefix).v_proj.\(suffix)"] else { continue }
    result["\(prefix).in_proj_\(suffix)"] = Tensor.cat([query, keyTensor, valueTensor])
    for part in ["q_proj", "k_proj", "v_proj"] { result["\(prefix).\(part).\(suffix)"] = nil }
  }
  return result
}
