import Foundation

extension DETRCommand {
  /// `--learning-rate -1` would read `-1` as a short option and report a missing value; joined as
  /// `--learning-rate=-1` the value reaches the option, whose check then names the allowed range.
  /// Only a long option directly followed by something that reads as a negative number (or -inf/-nan) is joined.
  public static func normalizedArguments(_ arguments: [String]) -> [String] {
    var result: [String] = []
    var index = 0
    while index < arguments.count {
      let argument = arguments[index]
      if argument.hasPrefix("--"), !argument.contains("="), argument.count > 2, index + 1 < arguments.count,
        isNegativeNumber(arguments[index + 1])
      {
        result.append("\(argument)=\(arguments[index + 1])")
        index += 2
        continue
      }
      result.append(argument)
      index += 1
    }
    return result
  }

  static func isNegativeNumber(_ text: String) -> Bool {
    guard text.hasPrefix("-"), text.count > 1 else { return false }
    let body = text.dropFirst().lowercased()
    return Double(body) != nil || body == "inf" || body == "nan" || body == "infinity"
  }
}
