import COCO
import Detection
import Detectors
import Foundation
import Torch
import TorchNN

/// A detector with the categories its classes stand for.
public struct LoadedDetector: @unchecked Sendable {
  public var detector: any Detector
  public var categories: CategoryMap
  /// The input the checkpoint was trained at, when it records one (`defaultInput` falls back to COCO's).
  public var input: DetectorInput?
  /// The preset the architecture is, when the checkpoint names one (converted official checkpoints do).
  public var preset: String?

  public init(detector: any Detector, categories: CategoryMap, input: DetectorInput? = nil, preset: String? = nil) {
    (self.detector, self.categories, self.input, self.preset) = (detector, categories, input, preset)
  }
}

/// Detector checkpoints: our folders (`config.json` with the resolved config and the category map,
/// `model.safetensors` with the reference keys) and transformers folders. Only JSON and safetensors
/// are read: nothing executes on load.
public enum DetectorCheckpoint {
  static let format = "swift-detr"

  struct Manifest: Codable {
    var format: String
    var version: Int
    var model: ModelKind
    var categories: CategoryMap
    var input: DetectorInput?
    var preset: String?
  }

  /// Writes `folder` safely: into a temporary sibling first; an existing checkpoint is moved aside
  /// to `.<name>.previous` and removed only once the new one is in place. A crash at any moment leaves
  /// a complete checkpoint at `folder` or at its `.previous` sibling, which `load` falls back to.
  /// `input`: the resize the detector expects (recorded as `"input"`, the default of predict and evaluate);
  /// `preset`: the preset the architecture is, when it is one (recorded for `detr serve`'s `/v1/model`).
  public static func save(
    _ detector: any Detector, categories: CategoryMap, input: DetectorInput? = nil, preset: String? = nil, to folder: URL,
    extraFiles: [String: Data] = [:]
  ) throws {
    let manager = FileManager.default
    let parent = folder.deletingLastPathComponent()
    let partialPrefix = ".\(folder.lastPathComponent).partial-"
    // A save killed before its final move leaves its partial folder behind; it is never read, so drop it.
    for stale in (try? manager.contentsOfDirectory(atPath: parent.path)) ?? [] where stale.hasPrefix(partialPrefix) {
      try? manager.removeItem(at: parent.appendingPathComponent(stale))
    }
    let temporary = parent.appendingPathComponent(partialPrefix + UUID().uuidString)
    do {
      try manager.createDirectory(at: temporary, withIntermediateDirectories: true)
      var config =
        try JSONSerialization.jsonObject(
          with: JSONEncoder().encode(Manifest(format: format, version: 1, model: detector.kind, categories: categories, input: input, preset: preset))) as! [String: Any]
      config["config"] = try JSONSerialization.jsonObject(with: detector.encodedConfig())
      try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys]).write(
        to: temporary.appendingPathComponent("config.json"))
      var tensors: [String: Tensor] = [:]
      for (key, tensor) in detector.stateDict() { tensors[key] = tensor.detached() }
      try SafeTensors.save(tensors, metadata: ["format": format], to: temporary.appendingPathComponent("model.safetensors"))
      for (name, data) in extraFiles { try data.write(to: temporary.appendingPathComponent(name)) }
      let previous = previousFolder(of: folder)
      if manager.fileExists(atPath: folder.path) {
        try? manager.removeItem(at: previous)
        try manager.moveItem(at: folder, to: previous)
      }
      try manager.moveItem(at: temporary, to: folder)
      try? manager.removeItem(at: previous)
    } catch {
      try? manager.removeItem(at: temporary)
      throw CheckpointError(path: folder.path, problem: "could not be written (\(error))")
    }
  }

  /// The checkpoint folder `folder` names: itself when it holds a checkpoint (or an interrupted save
  /// left its previous one), else the `best/` checkpoint of a training run folder, else its `last/`;
  /// `note` says which was taken when it is not `folder` itself. Throws when `folder` does not exist.
  public static func checkpointFolder(for folder: URL) throws -> (folder: URL, note: String?) {
    let manager = FileManager.default
    var isFolder: ObjCBool = false
    guard manager.fileExists(atPath: folder.path, isDirectory: &isFolder) || manager.fileExists(atPath: previousFolder(of: folder).path) else {
      throw CheckpointError(path: folder.path, problem: "does not exist; pass a checkpoint folder (config.json + model.safetensors) or a training run's folder")
    }
    // A run folder has a config.json too (the run's settings), but no weights of its own.
    guard isFolder.boolValue, !manager.fileExists(atPath: folder.appendingPathComponent("model.safetensors").path) else { return (folder, nil) }
    for name in ["best", "last"] {
      let inner = folder.appendingPathComponent(name)
      if manager.fileExists(atPath: inner.appendingPathComponent("model.safetensors").path) || manager.fileExists(atPath: previousFolder(of: inner).path) {
        return (inner, "\(folder.path) is a training run: using its \(name)/ checkpoint\(name == "last" ? " (it has no best/ yet)" : "")")
      }
    }
    return (folder, nil)
  }

  /// Where `save` keeps the old checkpoint while the new one is moved in.
  static func previousFolder(of folder: URL) -> URL {
    folder.deletingLastPathComponent().appendingPathComponent(".\(folder.lastPathComponent).previous")
  }

  /// Loads one of our checkpoints or a transformers folder, in evaluation mode. If a save was
  /// interrupted between moving the old checkpoint aside and moving the new one in, the old one is loaded.
  public static func load(_ folder: URL) throws -> LoadedDetector {
    let folder = try checkpointFolder(for: folder).folder
    let previous = previousFolder(of: folder)
    if !FileManager.default.fileExists(atPath: folder.path) && FileManager.default.fileExists(atPath: previous.path) {
      return try load(previous)
    }
    let configURL = folder.appendingPathComponent("config.json")
    guard let data = try? Data(contentsOf: configURL), let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
      throw CheckpointError(
        path: configURL.path, problem: "is missing or not JSON; a checkpoint folder holds config.json and model.safetensors")
    }
    if object["format"] as? String == format {
      return try loadOurs(folder, object: object, data: data)
    }
    return try loadTransformers(folder)
  }

  static func loadOurs(_ folder: URL, object: [String: Any], data: Data) throws -> LoadedDetector {
    let path = folder.appendingPathComponent("config.json").path
    let manifest: Manifest
    do {
      manifest = try JSONDecoder().decode(Manifest.self, from: data)
    } catch {
      throw CheckpointError(path: path, problem: "is not a valid swift-detr checkpoint config (\(error))")
    }
    let detector: any Detector
    if let config = object["config"] {
      do {
        detector = try DetectorFactory.make(kind: manifest.model, configJSON: JSONSerialization.data(withJSONObject: config))
      } catch {
        throw CheckpointError(path: path, problem: "has a 'config' that is not a valid \(manifest.model.rawValue) config (\(error))")
      }
    } else if let preset = object["preset"] as? String {
      // Converted official checkpoints name their architecture by preset.
      detector = try DetectorFactory.make(kind: manifest.model, preset: preset)
    } else {
      throw CheckpointError(path: path, problem: "has neither a 'config' nor a 'preset' field")
    }
    var weights = try SafeTensors.load(contentsOf: folder.appendingPathComponent("model.safetensors")).tensors
    // Folders written by the former Python converter keep an official layout, renamed here as `detr convert` renames it.
    switch object["layout"] as? String {
    case nil: break
    case let layout? where (layout == "detrex" && [.dino, .focusDETR].contains(manifest.model)) || (layout == "torchvision" && manifest.model == .retinaNet):
      weights = try CheckpointConversion.renamedToOurs(
        weights, family: manifest.model, layout: layout, path: folder.appendingPathComponent("model.safetensors").path)
    case let layout:
      throw CheckpointError(path: path, problem: "has 'layout' \(layout ?? "") that swift-detr cannot read for \(manifest.model.rawValue)")
    }
    do {
      try detector.load(stateDict: weights)
    } catch let error as StateDictError {
      throw CheckpointError(path: folder.path, problem: "has weights that do not match its config:\n\(error.report.summary)")
    }
    detector.eval()
    return LoadedDetector(detector: detector, categories: manifest.categories, input: manifest.input, preset: manifest.preset)
  }

  static func loadTransformers(_ folder: URL) throws -> LoadedDetector {
    let checkpoint = try TransformersCheckpoint(folder: folder)
    let detector: any Detector
    switch checkpoint.modelType {
    case "detr": detector = try DETRModel.load(transformers: checkpoint)
    case "conditional_detr": detector = try ConditionalDETRModel.load(transformers: checkpoint)
    case "deformable_detr": detector = try DeformableDETRModel.load(transformers: checkpoint)
    default:
      throw CheckpointError(
        path: folder.appendingPathComponent("config.json").path,
        problem: "has model_type \"\(checkpoint.modelType ?? "none")\"; supported: detr, conditional_detr, deformable_detr")
    }
    // transformers' class index i is the dataset's category id i (COCO checkpoints keep the 91 ids).
    let labels: [String: Any] = (try? checkpoint.value("id2label", default: [String: Any]())) ?? [:]
    let count = try checkpoint.classCount()
    let entries = (0..<count).map { CategoryMap.Entry(id: $0, name: labels[String($0)] as? String ?? "class \($0)") }
    return LoadedDetector(detector: detector, categories: CategoryMap(entries: entries))
  }
}
