import Foundation

/// What a COCO detection file holds, for `detr data inspect`: images and boxes per category, COCO's
/// size classes, images without annotations, and every problem the loader would report, named.
public struct DatasetInspection: Sendable {
  /// A category with the number of images it appears in and of its boxes.
  public struct CategoryCount: Sendable, Equatable {
    public var id: Int
    public var name: String
    public var images: Int
    public var boxes: Int
  }

  public var images: Int
  public var imagesWithoutAnnotations: Int
  public var annotations: Int
  public var crowdAnnotations: Int
  public var categories: [CategoryCount]
  /// Boxes in COCO's area ranges (the annotation's `area`, else width × height): small < 32², medium < 96², large.
  public var small: Int
  public var medium: Int
  public var large: Int
  /// The loader's findings (invalid boxes, unknown ids, missing files), each named.
  public var report: ValidationReport
  /// The usable samples, for drawing.
  public var dataset: DetectionDataset

  public init(annotationsFile: URL, imageDirectory: URL) throws {
    let annotations = try COCOAnnotations.load(contentsOf: annotationsFile)
    let dataset = try DetectionDataset(
      annotations: annotations, imageDirectory: imageDirectory, path: annotationsFile.path,
      policy: DetectionDataset.Policy(skipInvalidAnnotations: true, skipMissingImages: true))
    self.dataset = dataset
    report = dataset.report
    images = annotations.images.count
    let knownImages = Set(annotations.images.map(\.id))
    let annotated = Set(annotations.annotations.map(\.imageId)).intersection(knownImages)
    imagesWithoutAnnotations = knownImages.subtracting(annotated).count
    self.annotations = annotations.annotations.count
    crowdAnnotations = annotations.annotations.filter { $0.isCrowd != 0 }.count
    var boxes: [Int: Int] = [:]
    var imagesOf: [Int: Set<Int>] = [:]
    var (small, medium, large) = (0, 0, 0)
    for annotation in annotations.annotations where knownImages.contains(annotation.imageId) {
      boxes[annotation.categoryId, default: 0] += 1
      imagesOf[annotation.categoryId, default: []].insert(annotation.imageId)
      guard annotation.bbox.count == 4 else { continue }
      let area = annotation.area > 0 ? annotation.area : annotation.bbox[2] * annotation.bbox[3]
      if area < 32 * 32 { small += 1 } else if area < 96 * 96 { medium += 1 } else { large += 1 }
    }
    (self.small, self.medium, self.large) = (small, medium, large)
    categories = annotations.categories.sorted { $0.id < $1.id }.map {
      CategoryCount(id: $0.id, name: $0.name, images: imagesOf[$0.id]?.count ?? 0, boxes: boxes[$0.id] ?? 0)
    }
  }

  /// The report as a user reads it.
  public var text: String {
    var lines = [
      "\(images) images (\(imagesWithoutAnnotations) without annotations), \(annotations) annotations (\(crowdAnnotations) crowd), \(categories.count) categories",
      "box sizes (COCO area ranges): \(small) small (< 32²), \(medium) medium (< 96²), \(large) large",
      "",
      "category".padding(toLength: 24, withPad: " ", startingAt: 0) + "     id   images    boxes",
    ]
    for category in categories {
      lines.append(
        String(category.name.prefix(24)).padding(toLength: 24, withPad: " ", startingAt: 0)
          + String(format: " %6d %8d %8d", category.id, category.images, category.boxes))
    }
    lines.append("")
    lines.append(report.isClean ? "no problems found" : "problems found:\n\(report.summary)")
    return lines.joined(separator: "\n")
  }
}
