import Foundation

/// A config value that cannot work, named with what to do.
public struct ConfigError: Error, CustomStringConvertible, Sendable {
  public let description: String
  public init(_ description: String) { self.description = description }
}

extension ConfigError {
  /// A config that does not decode, described by the field and the problem rather than Swift's
  /// `DecodingError` text: "transformer.queries is not a number", "backbone.bottleneck is missing".
  /// `prefix`: the part of the config that was decoded alone (e.g. "transformer").
  public init(decoding error: Error, family: ModelKind, prefix: String? = nil) {
    guard let error = error as? DecodingError else {
      self.init("\(error)")
      return
    }
    func path(_ keys: [CodingKey]) -> String {
      (prefix.map { [$0] } ?? []).joined() + (prefix == nil || keys.isEmpty ? "" : ".") + keys.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined().trimmingCharacters(in: CharacterSet(charactersIn: "."))
    }
    let problem: String
    switch error {
    case .typeMismatch(let type, let context): problem = "\(path(context.codingPath)) is not a \(type == Int.self || type == Double.self ? "number" : "\(type)")"
    case .valueNotFound(_, let context): problem = "\(path(context.codingPath)) is missing"
    case .keyNotFound(let key, let context): problem = "\(path(context.codingPath + [key])) is missing"
    case .dataCorrupted(let context): problem = context.codingPath.isEmpty ? "the file is not valid JSON" : "\(path(context.codingPath)) is invalid (\(context.debugDescription))"
    @unknown default: problem = "\(error)"
    }
    self.init(problem)
  }
}
