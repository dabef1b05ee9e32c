import Foundation
import Testing
import Torch
import Training

/// `--device` on the commands, and `detr check-device`, on this machine (the real process). On a GPU
/// machine Scripts/device/gpu-check.sh runs `detr check-device --device cuda`.
@Suite struct DeviceCommandTests {
  /// Without a GPU, asking for one stops every command before any work, saying what to do.
  @Test(arguments: [
    ["benchmark", "--model", "detr", "--preset", "small", "--image-size", "64", "--iterations", "1"],
    ["predict", "--weights", "missing-folder", "no-image.jpg"],
    ["evaluate", "--annotations", "missing.json", "--weights", "missing-folder", "--images", "."],
    ["train", "--epochs", "1", "--output", "never-written"],
    ["check-device"],
    ["demo", "--images", "16", "--output", "never-written"],
  ])
  func cudaWithoutAGPUIsAClearError(arguments: [String]) throws {
    guard Torch.cudaDeviceCount == 0 else { return }
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("device-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: folder) }
    let (status, output) = try ConvertCommandTests.detr(arguments + ["--device", "cuda"], in: folder)
    #expect(status == 1, "\(arguments[0]): \(output)")
    #expect(output.contains("device cuda:0: this libtorch has no CUDA or sees no GPU") && output.contains("--device cpu"), "\(output)")
    #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("never-written").path))
  }

  @Test func aDeviceNameThatIsNoneIsAUsageError() throws {
    let (status, output) = try ConvertCommandTests.detr(["check-device", "--device", "gpu0"])
    #expect(status == 64 && output.contains("'gpu0' is invalid for '--device"), "\(output)")
    let noModel = try ConvertCommandTests.detr(["evaluate", "--annotations", "a.json", "--detections", "d.json", "--device", "cpu"])
    #expect(noModel.status == 64 && noModel.output.contains("with --detections no model runs"), "\(noModel.output)")
  }

  /// On the CPU the check compares the fused deformable attention with the composed one, and runs each
  /// family twice on the CPU (equal by construction: what it shows is that the check runs).
  @Test func checkDeviceOnTheCPU() throws {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("check-device-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: folder) }
    let report = folder.appendingPathComponent("report.json")
    let (status, output) = try ConvertCommandTests.detr(
      ["check-device", "--device", "cpu", "--models", "deformable-detr,retinanet", "--json", report.path])
    #expect(status == 0, "\(output)")
    #expect(output.contains("ok   fused attention on cpu vs composed: location gradient"))
    let json = try JSONSerialization.jsonObject(with: Data(contentsOf: report)) as? [String: Any]
    let checks = json?["checks"] as? [[String: Any]] ?? []
    #expect(checks.count >= 4 + 3 + 3)
    #expect(checks.allSatisfy { ($0["passed"] as? Bool) == true })
    // A tolerance nothing meets fails the check, with exit status 1.
    let strict = try ConvertCommandTests.detr(["check-device", "--device", "cpu", "--models", "detr", "--tolerance", "1e-30"])
    #expect(strict.status == 1 && strict.output.contains("FAIL fused attention"), "\(strict.output)")
  }

  @Test func parityChecksCompareAgainstTheReference() {
    let reference = Tensor([1, -3, 0.5] as [Float])
    #expect(DeviceParity.Check(name: "same", value: reference, reference: reference, tolerance: 1e-9).passed)
    let off = DeviceParity.Check(name: "off", value: Tensor([1, -3, 0.5006] as [Float]), reference: reference, tolerance: 1e-4)
    // 6e-4 over the largest magnitude, 3.
    #expect(!off.passed && abs(off.difference - 2e-4) < 1e-5)
    let nan = DeviceParity.Check(name: "nan", value: Tensor([1, .nan, 0.5] as [Float]), reference: reference, tolerance: 1e-4)
    #expect(!nan.passed)
  }
}
