import Foundation
import JSONMessages

/// A ground-truth box as COCOeval uses it: `box` is [x, y, width, height] in pixels; `area` is the
/// annotation's own area (the segment's, in COCO), which decides its area range.
public struct GroundTruthBox: Sendable, Equatable {
  public var id: Int
  public var imageId: Int
  public var categoryId: Int
  public var box: [Double]
  public var area: Double
  public var isCrowd: Bool

  public init(id: Int, imageId: Int, categoryId: Int, box: [Double], area: Double, isCrowd: Bool) {
    self.id = id
    self.imageId = imageId
    self.categoryId = categoryId
    self.box = box
    self.area = area
    self.isCrowd = isCrowd
  }
}

/// A detection as in a COCO results file: `box` is [x, y, width, height] in pixels of the original image.
public struct DetectedBox: Sendable, Equatable, Codable {
  public var imageId: Int
  public var categoryId: Int
  public var box: [Double]
  public var score: Double

  public init(imageId: Int, categoryId: Int, box: [Double], score: Double) {
    self.imageId = imageId
    self.categoryId = categoryId
    self.box = box
    self.score = score
  }

  enum CodingKeys: String, CodingKey {
    case imageId = "image_id"
    case categoryId = "category_id"
    case box = "bbox"
    case score
  }
}

/// The ground truth of an evaluation: every image (also those without boxes), the categories, and the boxes.
public struct GroundTruth: Sendable {
  public var imageIds: [Int]
  public var categories: [(id: Int, name: String)]
  public var boxes: [GroundTruthBox]

  public init(imageIds: [Int], categories: [(id: Int, name: String)], boxes: [GroundTruthBox]) {
    self.imageIds = imageIds
    self.categories = categories
    self.boxes = boxes
  }
}

/// Input that cannot be evaluated: names the file, the entry and the field, and what to do.
public struct EvaluationInputError: Error, CustomStringConvertible, Sendable {
  public let file: String
  public let problem: String
  public var description: String { "\(file): \(problem)" }
}

extension GroundTruth {
  /// Reads the fields COCOeval uses from a COCO instances file (`images`, `annotations`, `categories`).
  public static func load(contentsOf url: URL) throws -> GroundTruth {
    let data = try readFile(url)
    return try decode(data, file: url.path)
  }

  public static func decode(_ data: Data, file: String = "<ground truth>") throws -> GroundTruth {
    struct Image: Decodable { var id: Int }
    struct Category: Decodable {
      var id: Int
      var name: String?
    }
    struct Annotation: Decodable {
      var id: Int
      var image_id: Int
      var category_id: Int
      var bbox: [Double]
      var area: Double?
      var iscrowd: Int?
    }
    struct File: Decodable {
      var images: [Image]
      var annotations: [Annotation]
      var categories: [Category]
    }
    let parsed: File
    do {
      parsed = try JSONDecoder().decode(File.self, from: data)
    } catch {
      throw EvaluationInputError(
        file: file, problem: "is not a COCO instances file: \(DecodingErrorText.describe(error)). It needs \"images\", \"annotations\" and \"categories\".")
    }
    let imageIds = Set(parsed.images.map(\.id))
    let categoryIds = Set(parsed.categories.map(\.id))
    var seen = Set<Int>()
    var boxes: [GroundTruthBox] = []
    boxes.reserveCapacity(parsed.annotations.count)
    for (index, annotation) in parsed.annotations.enumerated() {
      let at = "annotations[\(index)] (id \(annotation.id))"
      guard seen.insert(annotation.id).inserted else { throw EvaluationInputError(file: file, problem: "\(at) repeats an annotation id") }
      guard imageIds.contains(annotation.image_id) else {
        throw EvaluationInputError(file: file, problem: "\(at) has image_id \(annotation.image_id), which is not in \"images\"")
      }
      guard categoryIds.contains(annotation.category_id) else {
        throw EvaluationInputError(file: file, problem: "\(at) has category_id \(annotation.category_id), which is not in \"categories\"")
      }
      guard annotation.bbox.count == 4, annotation.bbox.allSatisfy(\.isFinite) else {
        throw EvaluationInputError(
          file: file, problem: "\(at) has bbox \(annotation.bbox); it must be 4 finite numbers [x, y, width, height]")
      }
      let area = annotation.area ?? annotation.bbox[2] * annotation.bbox[3]
      boxes.append(
        GroundTruthBox(
          id: annotation.id, imageId: annotation.image_id, categoryId: annotation.category_id, box: annotation.bbox, area: area,
          isCrowd: (annotation.iscrowd ?? 0) != 0))
    }
    return GroundTruth(
      imageIds: parsed.images.map(\.id), categories: parsed.categories.map { (id: $0.id, name: $0.name ?? String($0.id)) }, boxes: boxes)
  }
}

extension DetectedBox {
  /// Reads a COCO results file (a list of `image_id`, `category_id`, `bbox`, `score`), checking each
  /// entry against the ground truth so that a wrong id is reported rather than silently scored.
  public static func load(contentsOf url: URL, checkedAgainst groundTruth: GroundTruth) throws -> [DetectedBox] {
    try decode(readFile(url), file: url.path, checkedAgainst: groundTruth)
  }

  public static func decode(_ data: Data, file: String = "<detections>", checkedAgainst groundTruth: GroundTruth) throws -> [DetectedBox] {
    let detections: [DetectedBox]
    do {
      detections = try JSONDecoder().decode([DetectedBox].self, from: data)
    } catch {
      throw EvaluationInputError(
        file: file,
        problem: "is not a COCO results list: \(DecodingErrorText.describe(error)). Each entry needs image_id, category_id, bbox [x, y, w, h] and score.")
    }
    let imageIds = Set(groundTruth.imageIds)
    let categoryIds = Set(groundTruth.categories.map(\.id))
    for (index, detection) in detections.enumerated() {
      guard imageIds.contains(detection.imageId) else {
        throw EvaluationInputError(
          file: file,
          problem:
            "entry \(index) has image_id \(detection.imageId), which is not an image of the ground truth; were the detections made on another dataset?"
        )
      }
      guard categoryIds.contains(detection.categoryId) else {
        throw EvaluationInputError(
          file: file,
          problem:
            "entry \(index) has category_id \(detection.categoryId), which is not a category of the ground truth (\(categoryIds.sorted().prefix(20).map(String.init).joined(separator: ", ")))"
        )
      }
      guard detection.box.count == 4, detection.box.allSatisfy(\.isFinite) else {
        throw EvaluationInputError(
          file: file, problem: "entry \(index) has bbox \(detection.box); it must be 4 finite numbers [x, y, width, height]")
      }
      guard detection.score.isFinite else {
        throw EvaluationInputError(file: file, problem: "entry \(index) has a score that is not a finite number")
      }
    }
    return detections
  }
}

private func readFile(_ url: URL) throws -> Data {
  do {
    return try Data(contentsOf: url, options: .mappedIfSafe)
  } catch {
    throw EvaluationInputError(file: url.path, problem: "cannot be read (\(error.localizedDescription))")
  }
}

