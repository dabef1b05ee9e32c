/// A config value that cannot work, named with what to do.
public struct ConfigError: Error, CustomStringConvertible, Sendable {
  public let description: String
  public init(_ description: String) { self.description = description }
}
