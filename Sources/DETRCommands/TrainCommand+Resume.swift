import ArgumentParser
import COCO
import Detectors
import Foundation
import Torch

/// A run records the settings it was started with (`settings` in its config.json); `--resume` takes
/// them back. A flag given on resume that contradicts them is an error naming both values, except
/// the few that may change (`--epochs`, `--max-iterations`, `--checkpoint-every`, `--log-every`); a
/// changed `--epochs` is recorded under `changes`.
extension TrainCommand {
  static func absolute(_ path: String?) -> String? { path.map { URL(fileURLWithPath: $0).standardizedFileURL.path } }

  /// The settings as recorded: paths absolute, unset options as null.
  var recordedSettings: [String: Any] {
    let values: [String: Any?] = [
      "model": model.rawValue, "preset": preset, "config": Self.absolute(config), "data": Self.absolute(data),
      "train_annotations": Self.absolute(trainAnnotations), "val_annotations": Self.absolute(validationAnnotations),
      "epochs": epochs, "lr_drop_epoch": learningRateDropEpoch, "batch_size": batchSize, "seed": Int(seed), "learning_rate": learningRate,
      "image_scale": imageScale, "augmentation": augmentation.rawValue, "synthetic_images": syntheticImages, "synthetic_size": syntheticSize,
      "synthetic_objects": syntheticObjects.rawValue, "set": overrides, "init_from": Self.absolute(initFrom),
      "backbone_weights": Self.absolute(backboneWeights), "ema_decay": emaDecay, "keep_empty": keepEmpty,
      "precision": precision.rawValue,
    ]
    return values.mapValues { $0 ?? NSNull() }
  }

  /// This command with the run's recorded settings, after checking the flags given against them.
  func resolvedForResume() throws -> (TrainCommand, changes: [[String: Any]]) {
    let file = URL(fileURLWithPath: output).appendingPathComponent("config.json")
    guard let data = try? Data(contentsOf: file), let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
      return (self, [])  // no run config yet: `resume()` reports that there is nothing to continue
    }
    guard let recorded = object["settings"] as? [String: Any] else {
      print("note: \(file.path) records no settings (a run of an older swift-detr); resuming with the flags given")
      return (self, [])
    }
    let defaults = try TrainCommand.parse([])
    let given = recordedSettings
    let unset = defaults.recordedSettings
    let changeable: Set<String> = ["epochs"]
    var conflicts: [String] = []
    var changes = (object["changes"] as? [[String: Any]]) ?? []
    for (key, value) in given.sorted(by: { $0.key < $1.key }) {
      let old = recorded[key] ?? NSNull()
      let wasGiven = !Self.same(value, unset[key] ?? NSNull())
      guard wasGiven, !Self.same(value, old) else { continue }
      if changeable.contains(key) {
        changes.append(["field": key, "from": old, "to": value, "at": ISO8601DateFormatter().string(from: Date())])
        print("changing \(key) from \(Self.text(old)) to \(Self.text(value)) (recorded in \(file.path))")
      } else {
        conflicts.append("--\(key.replacingOccurrences(of: "_", with: "-")) \(Self.text(value)) differs from the run's \(Self.text(old))")
      }
    }
    guard conflicts.isEmpty else {
      throw ValidationError(
        "--resume continues \(output) with the settings it was started with (\(file.path)):\n  " + conflicts.joined(separator: "\n  ")
          + "\nLeave these flags out, or start a new run with another --output")
    }
    var effective = self
    effective.apply(recorded)
    if let epochs { effective.epochs = epochs }
    return (effective, changes)
  }

  /// Takes every recorded setting.
  mutating func apply(_ recorded: [String: Any]) {
    func string(_ key: String) -> String? { recorded[key] as? String }
    if let value = string("model").flatMap(ModelKind.init(rawValue:)) { model = value }
    if let value = string("preset") { preset = value }
    (config, data, trainAnnotations, validationAnnotations) = (string("config"), string("data"), string("train_annotations"), string("val_annotations"))
    (initFrom, backboneWeights) = (string("init_from"), string("backbone_weights"))
    epochs = recorded["epochs"] as? Int
    learningRateDropEpoch = recorded["lr_drop_epoch"] as? Int
    if let value = recorded["batch_size"] as? Int { batchSize = value }
    if let value = recorded["seed"] as? Int { seed = UInt64(value) }
    learningRate = recorded["learning_rate"] as? Double
    imageScale = recorded["image_scale"] as? Double
    if let value = string("augmentation").flatMap(DETRTransform.Augmentation.init(rawValue:)) { augmentation = value }
    if let value = recorded["synthetic_images"] as? Int { syntheticImages = value }
    if let value = recorded["synthetic_size"] as? Int { syntheticSize = value }
    if let value = string("synthetic_objects").flatMap(SyntheticShapes.ObjectSizes.init(rawValue:)) { syntheticObjects = value }
    if let value = recorded["set"] as? [String] { overrides = value }
    emaDecay = recorded["ema_decay"] as? Double
    if let value = recorded["keep_empty"] as? Bool { keepEmpty = value }
    if let value = string("precision").flatMap(Precision.init(rawValue:)) { precision = value }
  }

  static func same(_ a: Any, _ b: Any) -> Bool {
    switch (a, b) {
    case (is NSNull, is NSNull): return true
    case (let x as [String], let y as [String]): return x == y
    case (let x as Bool, let y as Bool): return x == y
    case (let x as NSNumber, let y as NSNumber): return x.doubleValue == y.doubleValue
    case (let x as String, let y as String): return x == y
    default: return false
    }
  }

  static func text(_ value: Any) -> String {
    switch value {
    case is NSNull: return "(unset)"
    case let list as [String]: return list.isEmpty ? "(none)" : list.joined(separator: " ")
    default: return "\(value)"
    }
  }
}
