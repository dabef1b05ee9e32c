import Torch

/// A detector's training loss: the weighted total to back-propagate, and every term by name
/// (unweighted, as the reference logs them) with its weight.
public struct TrainingLosses: @unchecked Sendable {
  public struct Term: @unchecked Sendable {
    public var name: String
    public var value: Tensor
    public var weight: Double
    public init(name: String, value: Tensor, weight: Double) {
      self.name = name
      self.value = value
      self.weight = weight
    }
  }

  public var terms: [Term]
  public var total: Tensor

  public init(terms: [Term], total: Tensor) {
    self.terms = terms
    self.total = total
  }

  /// `terms` and their weighted sum.
  public init(terms: [Term]) {
    precondition(!terms.isEmpty, "TrainingLosses: no terms")
    self.terms = terms
    total = terms.dropFirst().reduce(terms[0].value * terms[0].weight) { $0 + $1.value * $1.weight }
  }

  /// The unweighted value of a term, nil when there is no term of that name.
  public subscript(name: String) -> Tensor? { terms.first { $0.name == name }?.value }
}
