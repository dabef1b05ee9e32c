import COCO
import Detection
import Detectors
import Foundation
import Testing
import Torch
import TorchTestSupport

@testable import Training

@Suite struct CheckpointTests {
  static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("DetectorsTests/Fixtures")

  func temporaryFolder() throws -> URL {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("checkpoint-\(UUID())")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    return folder
  }

  @Test(arguments: ["detr_r50_small", "conditional_detr_r50_small", "deformable_two_stage"])
  func ourCheckpointsRoundTripWithTheSameOutputs(name: String) throws {
    let folder = try temporaryFolder()
    defer { try? FileManager.default.removeItem(at: folder) }
    let original = try withSeededGenerator(0) { try DetectorCheckpoint.load(Self.fixtures.appendingPathComponent(name)) }
    #expect(original.categories.count == 5 && original.categories.categoryId(ofIndex: 3) == 3)
    let saved = folder.appendingPathComponent("model")
    try DetectorCheckpoint.save(original.detector, categories: original.categories, to: saved)
    try DetectorCheckpoint.save(original.detector, categories: original.categories, to: saved)  // replacing works too
    let reloaded = try withSeededGenerator(1) { try DetectorCheckpoint.load(saved) }
    #expect(reloaded.categories == original.categories && reloaded.detector.kind == original.detector.kind)
    let expected = try Goldens(Self.fixtures.appendingPathComponent("\(name)/expected.safetensors"))
    let (images, mask) = (expected["pixel_values"], expected["pixel_mask"] .== 0)
    let forward = { (detector: any Detector) in
      // The sizes are the padded ones: these families read only the images and the mask.
      let batch = DetectorBatch(
        images: images, paddingMask: mask, imageSizes: Array(repeating: (images.size(2), images.size(3)), count: images.size(0)))
      return withInferenceMode { (detector as! any SetPredictionDetector).predictions(for: batch) }
    }
    let (a, b) = (forward(original.detector), forward(reloaded.detector))
    expectClose(b.final.logits, a.final.logits, relative: 0, absolute: 0, "logits")
    expectClose(b.final.boxes, a.final.boxes, relative: 0, absolute: 0, "boxes")
    let leftovers = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.contains("partial") }
    #expect(leftovers.isEmpty, "no temporary folders left behind")
  }

  @Test func brokenCheckpointsGiveClearErrors() throws {
    let folder = try temporaryFolder()
    defer { try? FileManager.default.removeItem(at: folder) }
    let source = try withSeededGenerator(0) { try DetectorCheckpoint.load(Self.fixtures.appendingPathComponent("detr_r50_small")) }
    let saved = folder.appendingPathComponent("model")
    try DetectorCheckpoint.save(source.detector, categories: source.categories, to: saved)
    // A config for another family with these weights.
    var config = try JSONSerialization.jsonObject(with: Data(contentsOf: saved.appendingPathComponent("config.json"))) as! [String: Any]
    config["model"] = "deformable-detr"
    try JSONSerialization.data(withJSONObject: config).write(to: saved.appendingPathComponent("config.json"))
    #expect { try withSeededGenerator(0) { try DetectorCheckpoint.load(saved) } } throws: {
      "\($0)".contains("is not a valid deformable-detr config")
    }
    // Truncated weights.
    try DetectorCheckpoint.save(source.detector, categories: source.categories, to: saved)
    let weights = saved.appendingPathComponent("model.safetensors")
    let bytes = try Data(contentsOf: weights)
    try bytes.prefix(bytes.count - 100).write(to: weights)
    #expect { try withSeededGenerator(0) { try DetectorCheckpoint.load(saved) } } throws: { "\($0)".contains("model.safetensors") }
    #expect { try DetectorCheckpoint.load(folder) } throws: { "\($0)".contains("config.json") }
  }

  @Test func aSaveInterruptedBetweenItsTwoMovesLeavesTheOldCheckpointLoadable() throws {
    let folder = try temporaryFolder()
    defer { try? FileManager.default.removeItem(at: folder) }
    let source = try withSeededGenerator(0) { try DetectorCheckpoint.load(Self.fixtures.appendingPathComponent("detr_r50_small")) }
    let saved = folder.appendingPathComponent("last")
    try DetectorCheckpoint.save(source.detector, categories: source.categories, to: saved)
    // The state a kill leaves right after the old checkpoint was moved aside, with a half-written new one.
    try FileManager.default.moveItem(at: saved, to: DetectorCheckpoint.previousFolder(of: saved))
    let partial = folder.appendingPathComponent(".last.partial-1")
    try FileManager.default.createDirectory(at: partial, withIntermediateDirectories: true)
    try Data("{".utf8).write(to: partial.appendingPathComponent("config.json"))
    let recovered = try withSeededGenerator(0) { try DetectorCheckpoint.load(saved) }
    #expect(recovered.detector.kind == .detr && recovered.categories == source.categories)
  }
}
