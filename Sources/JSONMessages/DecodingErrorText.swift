import Foundation

/// Decoding errors as a person reads them: the path to the bad field and what is wrong with it, in
/// JSON's words rather than Swift's ("annotations[3].bbox is not a list", never "is not a Array<Any>").
public enum DecodingErrorText {
  /// "a number", "a string", "true or false", "a list", "an object", or "a value of the right kind".
  public static func kind(of type: Any.Type) -> String {
    switch type {
    case is any BinaryInteger.Type, is any BinaryFloatingPoint.Type, is NSNumber.Type: return "a number"
    case is String.Type, is Substring.Type: return "a string"
    case is Bool.Type: return "true or false"
    default:
      let name = String(describing: type)
      if name.hasPrefix("Array<") || name.hasPrefix("[") && !name.contains(":") { return "a list" }
      if name.hasPrefix("Dictionary<") || name.hasPrefix("[") && name.contains(":") { return "an object" }
      return "a value of the right kind"
    }
  }

  /// A field path: `annotations[3].bbox`, after `prefix` (`transformer.queries`) when given.
  public static func path(_ keys: [any CodingKey], prefix: String? = nil) -> String {
    let tail = keys.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined().trimmingCharacters(in: CharacterSet(charactersIn: "."))
    guard let prefix else { return tail }
    return tail.isEmpty ? prefix : tail.hasPrefix("[") ? prefix + tail : prefix + "." + tail
  }

  /// One line for `error`: "FIELD is not a number", "FIELD is missing", "the file is not valid JSON",
  /// "FIELD is invalid" (with the decoder's reason when `reasons`).
  public static func describe(_ error: any Error, prefix: String? = nil, reasons: Bool = false) -> String {
    guard let error = error as? DecodingError else { return "\(error)" }
    switch error {
    case .typeMismatch(let type, let context): return "\(path(context.codingPath, prefix: prefix)) is not \(kind(of: type))"
    case .valueNotFound(_, let context): return "\(path(context.codingPath, prefix: prefix)) is missing"
    case .keyNotFound(let key, let context): return "\(path(context.codingPath + [key], prefix: prefix)) is missing"
    case .dataCorrupted(let context):
      if context.codingPath.isEmpty { return "the file is not valid JSON" }
      return "\(path(context.codingPath, prefix: prefix)) is invalid" + (reasons ? " (\(context.debugDescription))" : "")
    @unknown default: return "\(error)"
    }
  }
}
