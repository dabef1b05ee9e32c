import Foundation

/// A validated COCO detection dataset: each image with its boxes, ready for transforms.
public struct DetectionDataset: Sendable {
  /// One image and its objects. Boxes are [x0, y0, x1, y1] in pixels of the stored image, clipped to it.
  public struct Sample: Sendable, Equatable {
    public var imageId: Int
    public var url: URL
    public var width: Int
    public var height: Int
    public var boxes: [[Double]]
    /// Contiguous class indices (see `CategoryMap`).
    public var labels: [Int]
    public var isCrowd: [Bool]
  }

  public var samples: [Sample]
  public var categories: CategoryMap
  public var report: ValidationReport
  /// How many images `Policy.dropImagesWithoutAnnotations` left out.
  public private(set) var droppedImagesWithoutAnnotations = 0

  /// What to do with bad entries. By default nothing is skipped: bad entries are errors.
  public struct Policy: Sendable {
    /// Drop annotations that point at unknown images or categories, or have malformed boxes, instead of failing.
    public var skipInvalidAnnotations = false
    /// Drop images whose files are missing instead of failing.
    public var skipMissingImages = false
    /// Check that every image file exists (before training starts, not mid-epoch).
    public var checkImageFiles = true
    /// Leave out images without (usable) annotations, as detectron2 and MMDetection do for training;
    /// evaluation keeps them (their detections are false positives).
    public var dropImagesWithoutAnnotations = false
    public init(
      skipInvalidAnnotations: Bool = false, skipMissingImages: Bool = false, checkImageFiles: Bool = true,
      dropImagesWithoutAnnotations: Bool = false
    ) {
      self.skipInvalidAnnotations = skipInvalidAnnotations
      self.skipMissingImages = skipMissingImages
      self.checkImageFiles = checkImageFiles
      self.dropImagesWithoutAnnotations = dropImagesWithoutAnnotations
    }
  }

  /// Loads and validates `annotationsFile`, with images under `imageDirectory`.
  public init(annotationsFile: URL, imageDirectory: URL, policy: Policy = Policy()) throws {
    let annotations = try COCOAnnotations.load(contentsOf: annotationsFile)
    try self.init(annotations: annotations, imageDirectory: imageDirectory, path: annotationsFile.path, policy: policy)
  }

  public init(annotations: COCOAnnotations, imageDirectory: URL, path: String = "<annotations>", policy: Policy = Policy()) throws {
    var report = ValidationReport()
    func fail(_ problem: String) -> AnnotationError { AnnotationError(path: path, problem: problem) }

    var imageIndex: [Int: Int] = [:]
    for (index, image) in annotations.images.enumerated() {
      if imageIndex[image.id] != nil { report.add(.duplicateImageId, "image id \(image.id)") } else { imageIndex[image.id] = index }
      if image.width <= 0 || image.height <= 0 { report.add(.emptyImage, "image id \(image.id) (\(image.width)x\(image.height))") }
    }
    var categoryIds = Set<Int>()
    for category in annotations.categories where !categoryIds.insert(category.id).inserted {
      report.add(.duplicateCategoryId, "category id \(category.id)")
    }
    guard report.count(.duplicateImageId) == 0, report.count(.duplicateCategoryId) == 0, report.count(.emptyImage) == 0 else {
      throw fail("cannot be used as it is:\n\(report.summary)\nFix the file: ids must be unique and images must have a size.")
    }
    guard !annotations.categories.isEmpty else { throw fail("has no categories; a detection dataset needs at least one") }
    let categories = CategoryMap(categories: annotations.categories)

    var samples = annotations.images.map {
      Sample(
        imageId: $0.id, url: imageDirectory.appendingPathComponent($0.fileName), width: $0.width, height: $0.height, boxes: [], labels: [],
        isCrowd: [])
    }
    var annotationIds = Set<Int>()
    for annotation in annotations.annotations {
      let name = "annotation id \(annotation.id)"
      if !annotationIds.insert(annotation.id).inserted { report.add(.duplicateAnnotationId, name) }
      guard let index = imageIndex[annotation.imageId] else {
        report.add(.unknownImage, "\(name) → image id \(annotation.imageId)")
        continue
      }
      guard let label = categories.index(ofCategory: annotation.categoryId) else {
        report.add(.unknownCategory, "\(name) → category id \(annotation.categoryId)")
        continue
      }
      guard annotation.bbox.count == 4, annotation.bbox.allSatisfy(\.isFinite) else {
        report.add(.malformedBox, "\(name) bbox \(annotation.bbox)")
        continue
      }
      let (x, y, w, h) = (annotation.bbox[0], annotation.bbox[1], annotation.bbox[2], annotation.bbox[3])
      guard w > 0, h > 0 else {
        report.add(.emptyBox, "\(name) (w \(w), h \(h))")
        continue
      }
      let sample = samples[index]
      let clipped = [max(0, x), max(0, y), min(Double(sample.width), x + w), min(Double(sample.height), y + h)]
      guard clipped[2] > clipped[0], clipped[3] > clipped[1] else {
        report.add(.boxOutsideImage, "\(name) lies entirely outside its \(sample.width)x\(sample.height) image")
        continue
      }
      if clipped != [x, y, x + w, y + h] { report.add(.clippedBox, "\(name) clipped to the image") }
      samples[index].boxes.append(clipped)
      samples[index].labels.append(label)
      samples[index].isCrowd.append(annotation.isCrowd != 0)
    }
    let invalid =
      report.count(.unknownImage) + report.count(.unknownCategory) + report.count(.malformedBox) + report.count(.boxOutsideImage)
    if invalid > 0 && !policy.skipInvalidAnnotations {
      throw fail(
        "has \(invalid) unusable annotations:\n\(report.summary)\nFix the file, or pass --skip-invalid-annotations to leave them out.")
    }
    if policy.checkImageFiles {
      let missing = samples.filter { !FileManager.default.isReadableFile(atPath: $0.url.path) }
      for sample in missing { report.add(.missingImageFile, sample.url.path) }
      if !missing.isEmpty {
        guard policy.skipMissingImages else {
          throw fail(
            "names \(missing.count) image files that do not exist under \(imageDirectory.path):\n\(report.summary)\nCheck the image folder, or pass --skip-missing-images to leave them out."
          )
        }
        let missingIds = Set(missing.map(\.imageId))
        samples.removeAll { missingIds.contains($0.imageId) }
      }
    }
    if policy.dropImagesWithoutAnnotations {
      droppedImagesWithoutAnnotations = samples.filter(\.boxes.isEmpty).count
      samples.removeAll { $0.boxes.isEmpty }
    }
    self.samples = samples
    self.categories = categories
    self.report = report
  }
}

/// Counted problems found while validating a dataset, with the first few examples of each.
public struct ValidationReport: Sendable, Equatable {
  /// A kind of problem, named as the report prints it.
  public enum Problem: String, Sendable, CaseIterable {
    case duplicateImageId = "duplicate image ids"
    case duplicateCategoryId = "duplicate category ids"
    case duplicateAnnotationId = "duplicate annotation ids (kept)"
    case emptyImage = "images with zero or negative size"
    case unknownImage = "annotations of unknown images"
    case unknownCategory = "annotations of unknown categories"
    case malformedBox = "annotations whose bbox is not 4 finite numbers"
    case emptyBox = "boxes with zero or negative width or height (dropped)"
    case boxOutsideImage = "boxes entirely outside their image"
    case clippedBox = "boxes reaching outside their image (clipped)"
    case missingImageFile = "missing image files"
  }

  public private(set) var counts: [Problem: Int] = [:]
  public private(set) var examples: [Problem: [String]] = [:]

  public init() {}

  mutating func add(_ problem: Problem, _ example: String) {
    counts[problem, default: 0] += 1
    if examples[problem, default: []].count < 5 { examples[problem, default: []].append(example) }
  }

  public func count(_ problem: Problem) -> Int { counts[problem] ?? 0 }
  public var isClean: Bool { counts.isEmpty }

  /// One line per problem found: its count and examples.
  public var summary: String {
    Problem.allCases.compactMap { problem in
      guard let count = counts[problem] else { return nil }
      let more = count > 5 ? ", ..." : ""
      return "  \(count) \(problem.rawValue): \(examples[problem]!.joined(separator: "; "))\(more)"
    }.joined(separator: "\n")
  }
}
