import COCO
import Foundation
import Testing

/// `detr data inspect` (the real process) counts what a file holds and names each problem.
@Suite struct InspectCommandTests {
  @Test func theBuiltInDataIsCountedRight() throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("inspect-\(UUID())")
    defer { try? FileManager.default.removeItem(at: root) }
    try SyntheticShapes.generate(to: root, images: 16, size: 128, seed: 9)
    let file = root.appendingPathComponent("annotations/train.json")
    let json = try JSONSerialization.jsonObject(with: Data(contentsOf: file)) as! [String: Any]
    let annotations = json["annotations"] as! [[String: Any]]
    let images = json["images"] as! [[String: Any]]
    // COCO's size classes go by the annotation's area (the shape's, not its box's).
    let areas = annotations.map { $0["area"] as! Double }
    let result = try ConvertCommandTests.detr([
      "data", "inspect", "--annotations", file.path, "--images", root.appendingPathComponent("images").path, "--draw", "2", "--output",
      root.appendingPathComponent("drawn").path,
    ])
    #expect(result.status == 0, "\(result.output)")
    let annotatedImages = Set(annotations.map { $0["image_id"] as! Int })
    #expect(
      result.output.contains(
        "\(images.count) images (\(images.count - annotatedImages.count) without annotations), \(annotations.count) annotations (0 crowd)"),
      "\(result.output)")
    let (small, medium) = (areas.filter { $0 < 1024 }.count, areas.filter { $0 >= 1024 && $0 < 9216 }.count)
    #expect(result.output.contains("\(small) small (< 32²), \(medium) medium (< 96²), \(areas.count - small - medium) large"), "\(result.output)")
    for category in json["categories"] as! [[String: Any]] {
      let id = category["id"] as! Int
      let boxes = annotations.filter { $0["category_id"] as! Int == id }
      let line = result.output.split(separator: "\n").first { $0.hasPrefix(category["name"] as! String) }
      #expect(line?.hasSuffix(String(format: " %6d %8d %8d", id, Set(boxes.map { $0["image_id"] as! Int }).count, boxes.count)) == true, "\(line ?? "")")
    }
    #expect(result.output.contains("no problems found"))
    let drawn = try FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent("drawn").path)
    #expect(drawn.count == 2 && result.output.contains("drew the ground truth of 2 images"))
  }

  @Test func aBadOutputStopsBeforeTheReport() throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("inspect-output-\(UUID())")
    defer { try? FileManager.default.removeItem(at: root) }
    try SyntheticShapes.generate(to: root, images: 8, size: 64, seed: 9)
    let aFile = root.appendingPathComponent("annotations/val.json")
    let full = root.appendingPathComponent("full")
    try FileManager.default.createDirectory(at: full, withIntermediateDirectories: true)
    try Data("x".utf8).write(to: full.appendingPathComponent("keep.txt"))
    for (output, says) in [(aFile.path, "is a file"), (full.path, "already holds files")] {
      let result = try ConvertCommandTests.detr([
        "data", "inspect", "--annotations", root.appendingPathComponent("annotations/train.json").path, "--images",
        root.appendingPathComponent("images").path, "--draw", "2", "--output", output,
      ])
      #expect(result.status != 0 && result.output.contains(says), "\(result.output)")
      #expect(!result.output.contains("annotations ("), "the report is not printed: \(result.output)")
    }
  }

  @Test func everyProblemOfABadFileIsNamed() throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("inspect-bad-\(UUID())")
    try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: root) }
    var image = Image(width: 100, height: 80)
    image.fillRectangle(0, 0, 10, 10, color: RGB(255, 0, 0))
    for name in ["a.png", "b.png", "empty.png"] { try image.write(to: root.appendingPathComponent(name)) }
    let json = """
      {"images": [{"id": 1, "file_name": "a.png", "width": 100, "height": 80}, {"id": 2, "file_name": "b.png", "width": 100, "height": 80},
                  {"id": 3, "file_name": "empty.png", "width": 100, "height": 80}, {"id": 4, "file_name": "gone.png", "width": 100, "height": 80}],
       "annotations": [
         {"id": 10, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20], "area": 400, "iscrowd": 0},
         {"id": 11, "image_id": 1, "category_id": 2, "bbox": [5, 5, 0, 8], "area": 0, "iscrowd": 0},
         {"id": 12, "image_id": 2, "category_id": 1, "bbox": [200, 200, 10, 10], "area": 100, "iscrowd": 0},
         {"id": 13, "image_id": 2, "category_id": 7, "bbox": [1, 1, 10, 10], "area": 100, "iscrowd": 0},
         {"id": 14, "image_id": 9, "category_id": 1, "bbox": [1, 1, 10, 10], "area": 100, "iscrowd": 0},
         {"id": 15, "image_id": 2, "category_id": 2, "bbox": [1, 1, 10], "area": 100, "iscrowd": 1},
         {"id": 16, "image_id": 2, "category_id": 2, "bbox": [50, 40, 100, 100], "area": 10000, "iscrowd": 0}],
       "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}]}
      """
    let file = root.appendingPathComponent("bad.json")
    try json.write(to: file, atomically: true, encoding: .utf8)
    let result = try ConvertCommandTests.detr(["data", "inspect", "--annotations", file.path, "--images", root.path])
    #expect(result.status == 0, "\(result.output)")
    for part in [
      "4 images (2 without annotations), 7 annotations (1 crowd), 2 categories",
      "1 boxes with zero or negative width or height (dropped): annotation id 11 (w 0.0, h 8.0)",
      "1 boxes entirely outside their image: annotation id 12 lies entirely outside its 100x80 image",
      "1 annotations of unknown categories: annotation id 13 → category id 7",
      "1 annotations of unknown images: annotation id 14 → image id 9",
      "1 annotations whose bbox is not 4 finite numbers: annotation id 15 bbox [1.0, 1.0, 10.0]",
      "1 boxes reaching outside their image (clipped): annotation id 16 clipped to the image",
      "1 missing image files:", "gone.png",
    ] {
      #expect(result.output.contains(part), "\(part)\n\(result.output)")
    }
    let overlap = try ConvertCommandTests.detr([
      "data", "inspect", "--annotations", file.path, "--images", root.path, "--draw", "1", "--output", root.appendingPathComponent("x").path,
    ])
    #expect(overlap.status != 0 && overlap.output.contains("overlaps --images"), "\(overlap.output)")
  }

  @Test func trainingLeavesOutImagesWithoutAnnotationsUnlessKept() throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("keep-empty-\(UUID())")
    defer { try? FileManager.default.removeItem(at: root) }
    try SyntheticShapes.generate(to: root, images: 16, size: 96, seed: 1)
    let file = root.appendingPathComponent("annotations/train.json")
    var json = try JSONSerialization.jsonObject(with: Data(contentsOf: file)) as! [String: Any]
    let images = json["images"] as! [[String: Any]]
    let emptied = images[0]["id"] as! Int
    json["annotations"] = (json["annotations"] as! [[String: Any]]).filter { $0["image_id"] as! Int != emptied }
    try JSONSerialization.data(withJSONObject: json).write(to: file)
    let folder = root.appendingPathComponent("images")
    let dropped = try DetectionDataset(annotationsFile: file, imageDirectory: folder, policy: .init(dropImagesWithoutAnnotations: true))
    let kept = try DetectionDataset(annotationsFile: file, imageDirectory: folder)
    #expect(dropped.samples.count == images.count - 1 && dropped.droppedImagesWithoutAnnotations == 1)
    #expect(kept.samples.count == images.count && !dropped.samples.contains { $0.imageId == emptied })
  }
}

extension InspectCommandTests {
  /// `data synthesize` never mixes a new dataset into an old one's files.
  @Test func synthesizeRefusesAnOccupiedFolderUnlessOverwriting() throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("synthesize-\(UUID())")
    defer { try? FileManager.default.removeItem(at: root) }
    let folder = root.appendingPathComponent("shapes")
    let base = ["data", "synthesize", "--output", folder.path, "--size", "64"]
    #expect(try ConvertCommandTests.detr(base + ["--images", "16"]).status == 0)
    let again = try ConvertCommandTests.detr(base + ["--images", "8"])
    #expect(again.status != 0 && again.output.contains("already holds files"), "\(again.output)")
    let replaced = try ConvertCommandTests.detr(base + ["--images", "8", "--overwrite"])
    #expect(replaced.status == 0, "\(replaced.output)")
    #expect(try FileManager.default.contentsOfDirectory(atPath: folder.appendingPathComponent("images").path).count == 8, "no stale images are left")
    try Data("notes".utf8).write(to: root.appendingPathComponent("notes.txt"))
    let foreign = try ConvertCommandTests.detr(["data", "synthesize", "--output", root.path, "--images", "8", "--overwrite"])
    #expect(foreign.status != 0 && foreign.output.contains("notes.txt"), "\(foreign.output)")
    #expect(FileManager.default.fileExists(atPath: root.appendingPathComponent("notes.txt").path))
  }
}
