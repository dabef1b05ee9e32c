import ArgumentParser
import COCO
import Foundation
import Testing
import TorchTestSupport

@testable import DETRCommands

/// `detr predict` never replaces an input, gives ids that cannot collide (and says which file got
/// which), and treats unreadable images as the user asks.
@Suite struct PredictSafetyTests {
  static let weights = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("DetectorsTests/Fixtures/deformable_multi_scale")

  /// Runs `detr predict` in this process; returns the error message, or nil on success.
  func predict(_ arguments: [String]) -> String? {
    do {
      var command = try DETRCommand.parseAsRoot(["predict", "--weights", Self.weights.path, "--threshold", "0", "--max-detections", "3"] + arguments)
      try withSeededGenerator(0) { try command.run() }
      return nil
    } catch {
      return DETRCommand.message(for: error)
    }
  }

  static func folderWithImages(_ names: [String]) throws -> URL {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("predict-safety-\(UUID())")
    for name in names {
      let url = folder.appendingPathComponent(name)
      try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
      try COCO.Image(width: 40, height: 32, color: COCO.RGB(UInt8(name.count * 20 % 255), 100, 150)).write(to: url)
    }
    return folder
  }

  @Test func idsFollowTheDocumentedRuleAndNeverCollide() {
    func ids(_ names: [String]) -> [Int] { PredictCommand.imageIds(names.map { URL(fileURLWithPath: "/data/\($0)") }) }
    #expect(ids(["000001.jpg", "000002.jpg", "17.png"]) == [1, 2, 17], "numbered names keep their numbers")
    #expect(ids(["COCO_val2014_000000000042.jpg"]) == [42], "COCO's names give COCO's ids")
    #expect(ids(["2.jpg", "a.jpg"]) == [1, 2], "a name without a number: every file gets its position")
    #expect(ids(["000001.jpg", "1.png"]) == [1, 2], "two names with one number: positions")
  }

  @Test func theMappingIsWrittenAndDrawnImagesKeepTheirFolders() throws {
    let folder = try Self.folderWithImages(["a/x.jpg", "b/x.jpg", "b/x.png"])
    defer { try? FileManager.default.removeItem(at: folder) }
    let json = folder.appendingPathComponent("results.json")
    let drawn = folder.appendingPathComponent("drawn")
    #expect(predict([folder.appendingPathComponent("a").path, folder.appendingPathComponent("b").path, "--json", json.path, "--output-dir", drawn.path]) == nil)
    let mapping = try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("results.image_ids.json"))) as! [[String: Any]]
    #expect(mapping.map { $0["file"] as! String } == ["a/x.jpg", "b/x.jpg", "b/x.png"] && mapping.map { $0["image_id"] as! Int } == [1, 2, 3])
    for name in ["a/x.jpg", "b/x.jpg", "b/x.png"] {
      #expect(FileManager.default.fileExists(atPath: drawn.appendingPathComponent(name).path), "\(name) drawn in its folder")
    }
  }

  @Test func outputsNeverReplaceInputs() throws {
    let folder = try Self.folderWithImages(["000001.jpg", "000002.jpg"])
    defer { try? FileManager.default.removeItem(at: folder) }
    let image = folder.appendingPathComponent("000001.jpg")
    let before = try Data(contentsOf: image)
    #expect(predict([folder.path, "--output-dir", folder.path])?.contains("holds input images") == true)
    #expect(predict([folder.path, "--json", image.path])?.contains("is one of the input images") == true)
    #expect(predict([folder.path, "--json", Self.weights.appendingPathComponent("config.json").path])?.contains("lies in the checkpoint folder") == true)
    #expect(predict([folder.path, "--output-dir", Self.weights.path])?.contains("overlaps the checkpoint folder") == true)
    #expect(try Data(contentsOf: image) == before, "the image is untouched")
    // An earlier run's outputs are replaced only with --overwrite.
    let json = FileManager.default.temporaryDirectory.appendingPathComponent("predict-\(UUID()).json")
    defer { try? FileManager.default.removeItem(at: json); try? FileManager.default.removeItem(at: PredictCommand.mappingFile(for: json)) }
    #expect(predict([image.path, "--json", json.path]) == nil)
    #expect(predict([image.path, "--json", json.path])?.contains("already exists; pass --overwrite") == true)
    #expect(predict([image.path, "--json", json.path, "--overwrite"]) == nil)
  }

  @Test func aBadImageStopsBeforeAnyWorkOrIsSkippedAndListed() throws {
    let folder = try Self.folderWithImages(["000001.jpg", "000003.jpg"])
    defer { try? FileManager.default.removeItem(at: folder) }
    try Data("not an image".utf8).write(to: folder.appendingPathComponent("000002.jpg"))
    let json = folder.appendingPathComponent("out/results.json")
    try FileManager.default.createDirectory(at: json.deletingLastPathComponent(), withIntermediateDirectories: true)
    let stopped = predict([folder.path, "--json", json.path])
    #expect(stopped?.contains("000002.jpg") == true && stopped?.contains("--skip-bad-images") == true, "\(stopped ?? "")")
    #expect(!FileManager.default.fileExists(atPath: json.path), "nothing was written")
    #expect(predict([folder.path, "--json", json.path, "--skip-bad-images"]) == nil)
    let results = try JSONSerialization.jsonObject(with: Data(contentsOf: json)) as! [[String: Any]]
    #expect(Set(results.map { $0["image_id"] as! Int }) == [1, 3], "the other images' results are kept")
  }
}

extension PredictSafetyTests {
  /// Images of extreme shapes (3000x2, 1x1) are resized and detected, not a crash.
  @Test func extremeAspectRatiosAndTinyImagesWork() throws {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("predict-shapes-\(UUID())")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: folder) }
    for (name, width, height) in [("000001.png", 3000, 2), ("000002.png", 1, 1), ("000003.png", 2, 2500)] {
      try COCO.Image(width: width, height: height, color: COCO.RGB(10, 200, 90)).write(to: folder.appendingPathComponent(name))
    }
    let json = folder.appendingPathComponent("out/results.json")
    try FileManager.default.createDirectory(at: json.deletingLastPathComponent(), withIntermediateDirectories: true)
    #expect(predict([folder.path, "--json", json.path]) == nil)
    let results = try JSONSerialization.jsonObject(with: Data(contentsOf: json)) as! [[String: Any]]
    #expect(Set(results.map { $0["image_id"] as! Int }) == [1, 2, 3], "every image has its detections")
  }
}

extension PredictSafetyTests {
  /// Bad usage exits 64, a failure at run time 1, each with one error line and no usage text.
  @Test func exitCodesTellUsageFromRunTimeFailures() throws {
    let folder = try Self.folderWithImages(["000001.jpg"])
    defer { try? FileManager.default.removeItem(at: folder) }
    try Data("not an image".utf8).write(to: folder.appendingPathComponent("000002.jpg"))
    let usage = try ConvertCommandTests.detr(["predict", "--weights", Self.weights.path, folder.path, "--threshold", "7"])
    #expect(usage.status == 64 && usage.output.hasPrefix("error: --threshold") && !usage.output.contains("Usage:"), "\(usage.output)")
    let runtime = try ConvertCommandTests.detr(["predict", "--weights", Self.weights.path, folder.path])
    #expect(runtime.status == 1 && runtime.output.contains("000002.jpg") && runtime.output.split(separator: "\n").count == 1, "\(runtime.output)")
  }
}
