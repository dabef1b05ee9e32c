import ArgumentParser
import COCO
import Foundation
import Testing
import Torch
import TorchTestSupport

@testable import DETRCommands

@Suite struct CommandTests {
  @Test func versionNamesThePackageLibtorchAndCUDA() {
    let text = VersionInfo.text
    #expect(text.hasPrefix("detr \(VersionInfo.packageVersion) (libtorch \(Torch.libtorchVersion), CUDA "))
    #expect(text.contains(Torch.isCUDAAvailable ? "available" : "not available"))
  }

  @Test func demoLearnsTheSpirals() {
    let result = SpiralsDemo(steps: 150, pointsPerClass: 100, seed: 1).run()
    #expect(result.finalLoss < result.initialLoss * 0.5, "loss \(result.initialLoss) -> \(result.finalLoss)")
    #expect(result.accuracy > 0.9, "accuracy \(result.accuracy)")
  }

  @Test func badFlagsAreRejectedWithTheirName() {
    #expect { try DETRCommand.parseAsRoot(["check", "--steps", "0"]) } throws: { error in
      DETRCommand.message(for: error).contains("--steps")
    }
    #expect { try DETRCommand.parseAsRoot(["check", "--points", "many"]) } throws: { error in
      DETRCommand.message(for: error).contains("many")
    }
    #expect(throws: (any Error).self) { try DETRCommand.parseAsRoot(["no-such-command"]) }
  }
}

@Suite struct PredictCommandTests {
  @Test func predictWritesCOCOResultsAndDrawnImages() throws {
    let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent(
      "DetectorsTests/Fixtures")
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("predict-\(UUID())")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: folder) }
    let image = folder.appendingPathComponent("42.png")
    var pixels = COCO.Image(width: 64, height: 48, color: COCO.RGB(20, 120, 200))
    pixels[3, 3] = COCO.RGB(255, 0, 0)
    try pixels.write(to: image)
    let json = folder.appendingPathComponent("out.json")
    var command = try DETRCommand.parseAsRoot([
      "predict", "--weights", fixtures.appendingPathComponent("deformable_multi_scale").path, image.path, "--threshold", "0",
      "--max-detections", "7", "--json", json.path, "--output-dir", folder.appendingPathComponent("drawn").path,
    ])
    try withSeededGenerator(0) { try command.run() }
    let results = try JSONSerialization.jsonObject(with: Data(contentsOf: json)) as! [[String: Any]]
    #expect(results.count == 7)
    #expect(
      results.allSatisfy {
        ($0["image_id"] as? Int) == 42 && ($0["bbox"] as? [Double])?.count == 4
          && ($0["category_id"] as? Int).map { (0..<5).contains($0) } == true
      })
    let scores = results.compactMap { $0["score"] as? Double }
    #expect(scores == scores.sorted(by: >))
    let drawn = try COCO.Image(contentsOf: folder.appendingPathComponent("drawn/42.png"))
    #expect(drawn.width == 64 && drawn.height == 48)
  }

  @Test func predictRejectsBadInputs() {
    #expect(throws: (any Error).self) { try DETRCommand.parseAsRoot(["predict", "--weights", "w", "x.jpg", "--threshold", "2"]) }
    #expect(throws: (any Error).self) { try DETRCommand.parseAsRoot(["predict", "--weights", "w"]) }
  }
}
