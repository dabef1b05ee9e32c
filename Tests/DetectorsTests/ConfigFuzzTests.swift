import Detection
import Foundation
import Testing
import Torch
import TorchTestSupport

@testable import Detectors

/// Every field of every family's config (the small presets' JSON, walked recursively) set to adversarial
/// values: the factory either refuses with a `ConfigError` naming the field, or builds a detector that
/// detects on a small padded batch. A trap here is a failure of the test run.
@Suite struct ConfigFuzzTests {
  nonisolated(unsafe) static let values: [Any] = [-1, 0, 1, 3, 1e9, "nan", "x", [Any](), true]

  /// Every leaf's key path in `object`.
  static func leaves(_ object: [String: Any], prefix: [String] = []) -> [[String]] {
    object.flatMap { key, value -> [[String]] in
      if let nested = value as? [String: Any] { return leaves(nested, prefix: prefix + [key]) }
      return [prefix + [key]]
    }.sorted { $0.joined(separator: ".") < $1.joined(separator: ".") }
  }

  static func setting(_ value: Any, at path: [String], in object: [String: Any]) -> [String: Any] {
    var object = object
    if path.count == 1 {
      object[path[0]] = value
    } else {
      object[path[0]] = setting(value, at: Array(path.dropFirst()), in: object[path[0]] as? [String: Any] ?? [:])
    }
    return object
  }

  @Test(arguments: ModelKind.allCases)
  func everyFieldOfEveryFamily(kind: ModelKind) throws {
    let preset = try DetectorFactory.make(kind: kind, preset: "small")
    let base = try JSONSerialization.jsonObject(with: preset.encodedConfig()) as! [String: Any]
    let images = Tensor.randn([2, 3, 64, 80])
    let mask = Tensor.zeros([2, 64, 80], dtype: .bool)
    mask[1, 48..., .all].fill(with: true)
    let batch = DetectorBatch(images: images, paddingMask: mask, imageSizes: [(64, 80), (48, 80)])
    var (refused, built) = (0, 0)
    // Two fixed choices per field (from a hash of its path), so that every run tries the same cases.
    let cases = Self.leaves(base).flatMap { path -> [([String], Any)] in
      let hash = (kind.rawValue + path.joined(separator: ".")).utf8.reduce(0) { ($0 &* 31 &+ Int($1)) & 0x7FFF_FFFF }
      return [(path, Self.values[hash % Self.values.count]), (path, Self.values[(hash / 7 + 1) % Self.values.count])]
    }
    for (path, value) in cases {
      let config = Self.setting(value, at: path, in: base)
      if ProcessInfo.processInfo.environment["FUZZ_TRACE"] != nil { print("FUZZ \(kind.rawValue) \(path.joined(separator: ".")) = \(value)") }
      guard JSONSerialization.isValidJSONObject(config), let data = try? JSONSerialization.data(withJSONObject: config) else { continue }
      do {
        let detector = try withSeededGenerator(1) { try DetectorFactory.make(kind: kind, configJSON: data) }
        detector.eval()
        let found = withInferenceMode { detector.detect(batch) }
        #expect(found.count == 2, "\(kind.rawValue) \(path.joined(separator: ".")) = \(value)")
        built += 1
      } catch {
        #expect(!"\(error)".contains("DecodingError"), "\(kind.rawValue) \(path.joined(separator: ".")) = \(value): \(error)")
        refused += 1
      }
    }
    #expect(refused + built > 10, "\(kind.rawValue): \(refused) refused, \(built) built")
  }
}
