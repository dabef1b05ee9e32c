import Foundation
import Testing
import TorchTestSupport

@testable import COCO

/// A temporary folder with the synthetic dataset, made once for the suites that need real files.
let syntheticFolder: URL = {
  let folder = temporaryFolderRemovedAtExit(named: "swift-detr-shapes")
  try! SyntheticShapes.generate(to: folder, images: 24, size: 128, seed: 5)
  return folder
}()

@Suite struct DatasetTests {
  func annotations(_ extra: [COCOAnnotations.Annotation] = []) -> COCOAnnotations {
    COCOAnnotations(
      images: [.init(id: 1, fileName: "a.jpg", width: 100, height: 80), .init(id: 2, fileName: "b.jpg", width: 50, height: 50)],
      annotations: [.init(id: 1, imageId: 1, categoryId: 7, bbox: [10, 10, 20, 30])] + extra,
      categories: [.init(id: 7, name: "cat"), .init(id: 3, name: "dog")])
  }

  let noFiles = DetectionDataset.Policy(checkImageFiles: false)

  @Test func categoryMapIsContiguousInIdOrderAndRoundTrips() throws {
    let map = CategoryMap(categories: annotations().categories)
    #expect(map.count == 2 && map.index(ofCategory: 3) == 0 && map.index(ofCategory: 7) == 1 && map.categoryId(ofIndex: 1) == 7)
    #expect(map.name(ofIndex: 0) == "dog" && map.index(ofCategory: 5) == nil)
    let decoded = try JSONDecoder().decode(CategoryMap.self, from: JSONEncoder().encode(map))
    #expect(decoded == map)
  }

  @Test func validDataLoadsWithImagesWithoutAnnotationsKept() throws {
    let dataset = try DetectionDataset(annotations: annotations(), imageDirectory: URL(fileURLWithPath: "/data"), policy: noFiles)
    #expect(dataset.samples.count == 2)
    #expect(dataset.samples[0].boxes == [[10, 10, 30, 40]] && dataset.samples[0].labels == [1])
    #expect(dataset.samples[1].boxes.isEmpty)
    #expect(dataset.report.isClean)
  }

  @Test func boxesAreClippedOrDroppedAndReported() throws {
    let data = annotations([
      .init(id: 2, imageId: 1, categoryId: 3, bbox: [90, 70, 30, 30]),  // reaches outside: clipped
      .init(id: 3, imageId: 2, categoryId: 3, bbox: [5, 5, 0, 10]),  // zero width: dropped
      .init(id: 4, imageId: 2, categoryId: 3, bbox: [5, 5, -3, 10]),  // negative: dropped
      .init(id: 5, imageId: 2, categoryId: 3, bbox: [5, 5, 10, 10], isCrowd: 1),
    ])
    let dataset = try DetectionDataset(annotations: data, imageDirectory: URL(fileURLWithPath: "/data"), policy: noFiles)
    #expect(dataset.samples[0].boxes[1] == [90, 70, 100, 80])
    #expect(dataset.report.count(.clippedBox) == 1)
    #expect(dataset.report.count(.emptyBox) == 2)
    #expect(dataset.samples[1].isCrowd == [true])
    #expect(dataset.report.summary.contains("2 boxes with zero or negative width or height (dropped): annotation id 3"))
  }

  @Test func unusableAnnotationsAreErrorsUnlessSkipped() throws {
    let data = annotations([
      .init(id: 2, imageId: 9, categoryId: 3, bbox: [1, 1, 5, 5]), .init(id: 3, imageId: 1, categoryId: 99, bbox: [1, 1, 5, 5]),
      .init(id: 4, imageId: 1, categoryId: 3, bbox: [1, 1]),
    ])
    #expect {
      try DetectionDataset(annotations: data, imageDirectory: URL(fileURLWithPath: "/data"), path: "train.json", policy: noFiles)
    } throws: { error in
      let text = "\(error)"
      return text.hasPrefix("train.json: has 3 unusable annotations") && text.contains("image id 9") && text.contains("category id 99")
    }
    var skipping = noFiles
    skipping.skipInvalidAnnotations = true
    let dataset = try DetectionDataset(annotations: data, imageDirectory: URL(fileURLWithPath: "/data"), policy: skipping)
    #expect(
      dataset.report.count(.unknownImage) == 1 && dataset.report.count(.unknownCategory) == 1 && dataset.report.count(.malformedBox) == 1)
    #expect(dataset.samples[0].boxes.count == 1)
  }

  @Test func duplicateIdsAreReported() throws {
    var data = annotations([.init(id: 1, imageId: 2, categoryId: 3, bbox: [1, 1, 5, 5])])
    let lenient = try DetectionDataset(annotations: data, imageDirectory: URL(fileURLWithPath: "/data"), policy: noFiles)
    #expect(lenient.report.count(.duplicateAnnotationId) == 1)
    data.images.append(.init(id: 2, fileName: "c.jpg", width: 5, height: 5))
    #expect(throws: AnnotationError.self) {
      try DetectionDataset(annotations: data, imageDirectory: URL(fileURLWithPath: "/data"), policy: noFiles)
    }
  }

  @Test func missingImageFilesAreFoundBeforeTraining() throws {
    #expect {
      try DetectionDataset(annotations: annotations(), imageDirectory: URL(fileURLWithPath: "/nonexistent"))
    } throws: { error in
      "\(error)".contains("2 image files that do not exist") && "\(error)".contains("/nonexistent/a.jpg")
    }
    let skipping = try DetectionDataset(
      annotations: annotations(), imageDirectory: URL(fileURLWithPath: "/nonexistent"), policy: .init(skipMissingImages: true))
    #expect(skipping.samples.isEmpty && skipping.report.count(.missingImageFile) == 2)
  }

  @Test func malformedAnnotationFilesNameTheField() {
    let cases = [
      ("not json", "{"), ("wrong type", #"{"images": 3, "annotations": [], "categories": []}"#),
      ("missing field", #"{"images": [{"id": 1, "width": 2, "height": 2}], "annotations": [], "categories": []}"#),
    ]
    for (name, text) in cases {
      #expect("\(name)") { try COCOAnnotations.decode(Data(text.utf8), path: "x.json") } throws: { error in
        "\(error)".hasPrefix("x.json: is not a valid COCO instances file")
      }
    }
    #expect { try COCOAnnotations.decode(Data(cases[2].1.utf8), path: "x.json") } throws: {
      "\($0)".contains("images[0].file_name is missing")
    }
  }

  /// Mutated JSON: never a crash, always a clear error or a valid file.
  @Test func fuzzedAnnotationFilesNeverCrash() throws {
    let original = try Data(contentsOf: syntheticFolder.appendingPathComponent("annotations/val.json"))
    var random = SeededRandom(seed: 3)
    for round in 0..<200 {
      var bytes = original
      if round % 2 == 0 {
        bytes = bytes.prefix(random.integer(0, bytes.count - 1))
      } else {
        for _ in 0..<random.integer(1, 5) { bytes[random.integer(0, bytes.count - 1)] = Array("{}[],:\"0a-".utf8)[random.integer(0, 9)] }
      }
      do {
        let parsed = try COCOAnnotations.decode(bytes, path: "fuzz.json")
        _ = try? DetectionDataset(annotations: parsed, imageDirectory: syntheticFolder.appendingPathComponent("images"))
      } catch let error as AnnotationError {
        #expect(error.path == "fuzz.json")
      }
    }
  }

  @Test func syntheticDataIsDeterministicAndCoversAllSizes() throws {
    let again = FileManager.default.temporaryDirectory.appendingPathComponent("swift-detr-shapes-again-\(UUID())")
    defer { try? FileManager.default.removeItem(at: again) }
    try SyntheticShapes.generate(to: again, images: 24, size: 128, seed: 5)
    for file in ["annotations/train.json", "annotations/val.json", "images/000001.jpg", "images/000017.jpg"] {
      #expect(
        try Data(contentsOf: again.appendingPathComponent(file)) == Data(contentsOf: syntheticFolder.appendingPathComponent(file)),
        "\(file)")
    }
    let train = try COCOAnnotations.load(contentsOf: syntheticFolder.appendingPathComponent("annotations/train.json"))
    let validation = try COCOAnnotations.load(contentsOf: syntheticFolder.appendingPathComponent("annotations/val.json"))
    #expect(train.images.count == 21 && validation.images.count == 3)
    #expect(train.categories.count == 6)
    let scale = 320.0 / 128 * 320.0 / 128  // area ranges at 320 pixels
    let areas = train.annotations.map { $0.bbox[2] * $0.bbox[3] * scale * 0.5 }
    #expect(areas.contains { $0 < 1024 } && areas.contains { $0 > 1024 && $0 < 9216 } && areas.contains { $0 > 9216 })
    #expect(Set(train.annotations.map(\.categoryId)).count >= 4)
  }

  @Test func syntheticObjectsOverlapButStayMostlyVisible() {
    var visibleFractions: [Double] = []
    var objectCount = 0
    for item in 0..<60 {
      var random = SeededRandom(seed: 11, stream: 0, item: UInt64(item))
      let (_, objects) = SyntheticShapes.render(size: 160, objectSizes: .mediumAndLarge, random: &random)
      visibleFractions += objects.map(\.visibleFraction)
      objectCount += objects.count
    }
    #expect(visibleFractions.allSatisfy { $0 >= SyntheticShapes.minimumVisibleFraction })
    let partlyCovered = visibleFractions.filter { $0 < 0.95 }.count
    #expect(partlyCovered >= objectCount / 5, "overlap should stay common: \(partlyCovered) of \(objectCount) objects partly covered")
    #expect(Double(objectCount) / 60 >= 2.5, "few objects are left out for lack of room: \(objectCount) in 60 images")
  }
}
