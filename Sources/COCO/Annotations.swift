import Foundation
import JSONMessages

/// A COCO instances file: images, object annotations and categories. Fields COCO defines but
/// detection does not use (segmentation polygons, licenses) are not decoded, so large files load fast.
public struct COCOAnnotations: Codable, Sendable {
  /// An image entry: its id, file name relative to the image folder, and size in pixels.
  public struct ImageInfo: Codable, Sendable, Equatable {
    public var id: Int
    public var fileName: String
    public var width: Int
    public var height: Int

    public init(id: Int, fileName: String, width: Int, height: Int) {
      self.id = id
      self.fileName = fileName
      self.width = width
      self.height = height
    }

    enum CodingKeys: String, CodingKey {
      case id
      case fileName = "file_name"
      case width
      case height
    }
  }

  /// An object: its image, category, box ([x, y, width, height] in pixels), area and crowd flag.
  public struct Annotation: Codable, Sendable, Equatable {
    public var id: Int
    public var imageId: Int
    public var categoryId: Int
    /// [x, y, width, height] in pixels.
    public var bbox: [Double]
    public var area: Double
    public var isCrowd: Int

    public init(id: Int, imageId: Int, categoryId: Int, bbox: [Double], area: Double? = nil, isCrowd: Int = 0) {
      self.id = id
      self.imageId = imageId
      self.categoryId = categoryId
      self.bbox = bbox
      self.area = area ?? (bbox.count == 4 ? bbox[2] * bbox[3] : 0)
      self.isCrowd = isCrowd
    }

    enum CodingKeys: String, CodingKey {
      case id
      case imageId = "image_id"
      case categoryId = "category_id"
      case bbox
      case area
      case isCrowd = "iscrowd"
    }

    public init(from decoder: Decoder) throws {
      let container = try decoder.container(keyedBy: CodingKeys.self)
      id = try container.decode(Int.self, forKey: .id)
      imageId = try container.decode(Int.self, forKey: .imageId)
      categoryId = try container.decode(Int.self, forKey: .categoryId)
      bbox = try container.decode([Double].self, forKey: .bbox)
      area = try container.decodeIfPresent(Double.self, forKey: .area) ?? (bbox.count == 4 ? bbox[2] * bbox[3] : 0)
      isCrowd = try container.decodeIfPresent(Int.self, forKey: .isCrowd) ?? 0
    }
  }

  /// A category: its id (as the file numbers it) and name.
  public struct Category: Codable, Sendable, Equatable {
    public var id: Int
    public var name: String
    public var supercategory: String?

    public init(id: Int, name: String, supercategory: String? = nil) {
      self.id = id
      self.name = name
      self.supercategory = supercategory
    }
  }

  public var images: [ImageInfo]
  public var annotations: [Annotation]
  public var categories: [Category]

  public init(images: [ImageInfo], annotations: [Annotation], categories: [Category]) {
    self.images = images
    self.annotations = annotations
    self.categories = categories
  }
}

/// An annotation file that cannot be used; names the file and the entry, and says what to do.
public struct AnnotationError: Error, CustomStringConvertible, Sendable {
  public let path: String
  public let problem: String
  public var description: String { "\(path): \(problem)" }
}

extension COCOAnnotations {
  /// Reads a COCO instances file (memory-mapped).
  public static func load(contentsOf url: URL) throws -> COCOAnnotations {
    let data: Data
    do {
      data = try Data(contentsOf: url, options: .mappedIfSafe)
    } catch {
      throw AnnotationError(path: url.path, problem: "cannot be read (\(error.localizedDescription))")
    }
    return try decode(data, path: url.path)
  }

  public static func decode(_ data: Data, path: String = "<annotations>") throws -> COCOAnnotations {
    do {
      return try JSONDecoder().decode(COCOAnnotations.self, from: data)
    } catch let error as DecodingError {
      throw AnnotationError(path: path, problem: "is not a valid COCO instances file: \(DecodingErrorText.describe(error))")
    } catch {
      throw AnnotationError(path: path, problem: "is not a valid COCO instances file: \(error)")
    }
  }

  /// Writes the file as JSON, atomically.
  public func write(to url: URL) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    do {
      try encoder.encode(self).write(to: url, options: .atomic)
    } catch {
      throw AnnotationError(path: url.path, problem: "cannot be written (\(error.localizedDescription))")
    }
  }
}

