import Foundation

/// Contiguous class indices (0..<count, what a model predicts) ↔ the dataset's category ids ↔ names.
/// Saved in every checkpoint, and used to write results back with the original ids.
public struct CategoryMap: Codable, Sendable, Equatable {
  /// One class: the dataset category id it stands for and its name.
  public struct Entry: Codable, Sendable, Equatable {
    public var id: Int
    public var name: String
    public init(id: Int, name: String) {
      self.id = id
      self.name = name
    }
  }

  /// Entries in class-index order.
  public private(set) var entries: [Entry]
  private var indexById: [Int: Int]

  /// Categories in ascending id order get indices 0, 1, ...
  public init(categories: [COCOAnnotations.Category]) {
    self.init(entries: categories.sorted { $0.id < $1.id }.map { Entry(id: $0.id, name: $0.name) })
  }

  public init(entries: [Entry]) {
    self.entries = entries
    indexById = Dictionary(entries.enumerated().map { ($1.id, $0) }, uniquingKeysWith: { first, _ in first })
  }

  public var count: Int { entries.count }
  public func index(ofCategory id: Int) -> Int? { indexById[id] }
  public func categoryId(ofIndex index: Int) -> Int { entries[index].id }
  public func name(ofIndex index: Int) -> String { entries[index].name }

  enum CodingKeys: String, CodingKey { case entries = "categories" }

  public init(from decoder: Decoder) throws {
    let container = try decoder.container(keyedBy: CodingKeys.self)
    self.init(entries: try container.decode([Entry].self, forKey: .entries))
  }

  public func encode(to encoder: Encoder) throws {
    var container = encoder.container(keyedBy: CodingKeys.self)
    try container.encode(entries, forKey: .entries)
  }
}
