import Foundation
import JSONMessages

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
    self.init(DecodingErrorText.describe(error, prefix: prefix, reasons: true))
  }
}
