import ArgumentParser
import Detectors
import Foundation
import Torch
import Training

/// `detr check-device`: every family's losses and gradients, and the fused deformable attention, on a
/// device against the CPU. The check to run on a new GPU machine (Scripts/device/gpu-check.sh runs it).
struct CheckDeviceCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "check-device",
    abstract: "Check that a device computes what the CPU does: each family's losses and gradients, and the fused deformable attention.",
    discussion: """
      Each family's small preset, in evaluation mode, computes its losses on a padded batch of two images and \
      back-propagates, on the CPU and then with the same weights on --device; the fused deformable attention is \
      compared with the composed version on the device and with the CPU; dropout's masks follow the seed. A \
      difference is the largest absolute one over max(1, the largest CPU magnitude). TensorFloat-32 is turned off \
      for the check. Exit status 1 when any comparison exceeds --tolerance.
      """)

  @Option(help: deviceHelp)
  var device: Device?

  @Option(help: ArgumentHelp("Families to check, comma-separated (default: all).", valueName: "names"))
  var models: String?

  @Option(help: "The largest difference allowed.")
  var tolerance = 1e-4

  @Option(name: .customLong("json"), help: ArgumentHelp("Write every comparison here.", valueName: "OUT.json"))
  var jsonPath: String?

  func validate() throws {
    guard tolerance > 0, tolerance.isFinite else { throw ValidationError("--tolerance must be positive, got \(tolerance)") }
    _ = try kinds()
  }

  func kinds() throws -> [ModelKind] {
    guard let models else { return ModelKind.allCases }
    return try models.split(separator: ",").map { name in
      guard let kind = ModelKind(rawValue: String(name)) else {
        throw ValidationError(
          "--models: unknown family '\(name)'; families: \(ModelKind.allCases.map(\.rawValue).joined(separator: ", "))")
      }
      return kind
    }
  }

  func run() throws {
    let device = try Device.resolve(self.device)
    Torch.allowTF32(false)
    print("checking \(device) against the CPU (libtorch \(Torch.libtorchVersion)), tolerance \(tolerance)")
    var checks = DeviceParity.compareDeformableAttention(on: device, tolerance: tolerance) + DeviceParity.checkDropout(on: device)
    for kind in try kinds() {
      checks += try DeviceParity.compare(kind: kind, on: device, tolerance: tolerance)
    }
    for check in checks {
      print("\(check.passed ? "ok  " : "FAIL") \(check.name): \(String(format: "%.2e", check.difference))")
    }
    let failed = checks.filter { !$0.passed }
    if let jsonPath {
      let report: [String: Any] = [
        "device": device.description, "libtorch": Torch.libtorchVersion, "tolerance": tolerance,
        "checks": checks.map { ["name": $0.name, "difference": $0.difference.isFinite ? $0.difference : -1, "passed": $0.passed] },
      ]
      try JSONSerialization.data(withJSONObject: report, options: [.prettyPrinted, .sortedKeys]).write(
        to: URL(fileURLWithPath: jsonPath), options: .atomic)
    }
    guard failed.isEmpty else {
      throw CommandFailure("\(failed.count) of \(checks.count) comparisons on \(device) failed (differences above their tolerance: \(tolerance) for the computations)")
    }
    print("all \(checks.count) comparisons passed")
  }
}
