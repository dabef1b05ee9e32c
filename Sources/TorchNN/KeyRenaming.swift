import Foundation

/// Rules that rename state-dict keys from another layout (e.g. Hugging Face `transformers`) to ours,
/// kept as data. Each rule is a regular expression over the whole key and a replacement in which
/// `{n}` is capture group n and `{n+k}` / `{n-k}` is that group's integer shifted by k (for layouts
/// that count from 0 where ours counts from 1). The first matching rule wins; keys no rule matches
/// are kept as they are.
public struct KeyRenaming: Sendable {
  public struct Rule: Sendable {
    public var pattern: String
    public var replacement: String
    public init(_ pattern: String, _ replacement: String) {
      self.pattern = pattern
      self.replacement = replacement
    }
  }

  public var rules: [Rule]
  private let expressions: [NSRegularExpression]

  public init(rules: [Rule]) {
    self.rules = rules
    expressions = rules.map { rule in
      guard let expression = try? NSRegularExpression(pattern: "^" + rule.pattern + "$") else {
        preconditionFailure("KeyRenaming: invalid pattern \(rule.pattern)")
      }
      return expression
    }
  }

  /// The renamed key.
  public func rename(_ key: String) -> String {
    let range = NSRange(key.startIndex..., in: key)
    for (rule, expression) in zip(rules, expressions) {
      guard let match = expression.firstMatch(in: key, range: range) else { continue }
      return substitute(rule.replacement, match: match, in: key)
    }
    return key
  }

  /// Renames every key of a state dict; two keys renamed to one is a programming error in the rules.
  public func rename<Value>(_ stateDict: [String: Value]) -> [String: Value] {
    var result: [String: Value] = [:]
    for (key, value) in stateDict {
      let renamed = rename(key)
      precondition(result[renamed] == nil, "KeyRenaming: two keys become '\(renamed)'")
      result[renamed] = value
    }
    return result
  }

  private func substitute(_ template: String, match: NSTextCheckingResult, in key: String) -> String {
    var output = ""
    var rest = Substring(template)
    while let open = rest.firstIndex(of: "{"), let close = rest[open...].firstIndex(of: "}") {
      output += rest[..<open]
      let token = rest[rest.index(after: open)..<close]
      var group = Int(token) ?? 0
      var shift = 0
      if let sign = token.firstIndex(where: { $0 == "+" || $0 == "-" }) {
        group = Int(token[..<sign]) ?? 0
        shift = (Int(token[token.index(after: sign)...]) ?? 0) * (token[sign] == "+" ? 1 : -1)
      }
      let captured = Range(match.range(at: group), in: key).map { String(key[$0]) } ?? ""
      output += shift == 0 ? captured : String((Int(captured) ?? 0) + shift)
      rest = rest[rest.index(after: close)...]
    }
    return output + rest
  }
}
