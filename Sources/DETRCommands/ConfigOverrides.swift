import ArgumentParser
import Foundation

/// `--set key=value` on a JSON config: dotted keys reach nested fields (`transformer.queries=50`);
/// the value is read as JSON (numbers, booleans, arrays) or else as a string. Only existing keys can
/// be set, so a typo is an error that lists the valid keys.
enum ConfigOverrides {
  static func apply(_ assignments: [String], to object: inout [String: Any]) throws {
    for assignment in assignments {
      guard let equals = assignment.firstIndex(of: "="), equals != assignment.startIndex else {
        throw ValidationError("--set \(assignment): expected key=value, e.g. transformer.queries=50")
      }
      let path = assignment[..<equals].split(separator: ".").map(String.init)
      let text = String(assignment[assignment.index(after: equals)...])
      let value: Any = (try? JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])) ?? text
      try set(value, at: path, in: &object, prefix: "")
    }
  }

  private static func set(_ value: Any, at path: [String], in object: inout [String: Any], prefix: String) throws {
    let key = path[0]
    guard let current = object[key] else {
      throw ValidationError(
        "--set: unknown key '\(prefix)\(key)'; valid keys here: \(object.keys.sorted().map { prefix + $0 }.joined(separator: ", "))")
    }
    if path.count == 1 {
      guard !(current is [String: Any]) else {
        throw ValidationError(
          "--set: '\(prefix)\(key)' is a group; set one of its keys: \((current as! [String: Any]).keys.sorted().map { "\(prefix)\(key).\($0)" }.joined(separator: ", "))"
        )
      }
      object[key] = value
      return
    }
    guard var nested = current as? [String: Any] else { throw ValidationError("--set: '\(prefix)\(key)' has no fields") }
    try set(value, at: Array(path.dropFirst()), in: &nested, prefix: "\(prefix)\(key).")
    object[key] = nested
  }
}
