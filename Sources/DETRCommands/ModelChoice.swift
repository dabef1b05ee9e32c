import ArgumentParser
import Detectors
import Foundation

/// The architecture a command builds: a family's preset or a config file, with `--set` overrides.
struct ModelChoice {
  /// Throws the `--preset` error every command gives for a name the family does not have.
  static func checkPreset(_ preset: String, of kind: ModelKind) throws {
    guard kind.presets.contains(preset) else {
      throw ValidationError("--preset \(preset) is not a preset of \(kind.rawValue); presets: \(kind.presets.joined(separator: ", "))")
    }
  }

  var kind: ModelKind
  var preset: String
  var configFile: String?
  var overrides: [String]

  /// The detector with the chosen architecture, fresh weights, and (when given) `classCount` classes.
  /// `trainBatchNorm` switches the backbone to trainable batch norm, for a backbone trained from scratch.
  func makeDetector(classCount: Int? = nil, trainBatchNorm: Bool = false) throws -> any Detector {
    var json: Data
    if let configFile {
      do {
        json = try Data(contentsOf: URL(fileURLWithPath: configFile))
      } catch {
        throw ValidationError("--config \(configFile) cannot be read (\(error.localizedDescription))")
      }
    } else {
      json = try DetectorFactory.make(kind: kind, preset: preset).encodedConfig()
    }
    guard var object = (try? JSONSerialization.jsonObject(with: json)) as? [String: Any] else {
      throw ValidationError("--config \(configFile ?? preset) is not a JSON object")
    }
    if trainBatchNorm, var backbone = object["backbone"] as? [String: Any] {
      backbone["frozen_batch_norm"] = false
      object["backbone"] = backbone
    }
    try ConfigOverrides.apply(overrides, to: &object)
    if let classCount { object["class_count"] = classCount }
    json = try JSONSerialization.data(withJSONObject: object)
    do {
      return try DetectorFactory.make(kind: kind, configJSON: json)
    } catch {
      let source = configFile.map { "--config \($0)" } ?? "--preset \(preset)" + (overrides.isEmpty ? "" : " with --set \(overrides.joined(separator: " "))")
      throw ValidationError("\(source) is not a valid \(kind.rawValue) config: \(error)")
    }
  }
}
