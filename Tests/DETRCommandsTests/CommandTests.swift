import ArgumentParser
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
    // The demo seeds libtorch's default generator, which other tests share.
    let result = withSeededDefaultGenerator(1) { SpiralsDemo(steps: 150, pointsPerClass: 100, seed: 1).run() }
    #expect(result.finalLoss < result.initialLoss * 0.5, "loss \(result.initialLoss) -> \(result.finalLoss)")
    #expect(result.accuracy > 0.9, "accuracy \(result.accuracy)")
  }

  @Test func badFlagsAreRejectedWithTheirName() {
    #expect { try DETRCommand.parseAsRoot(["demo", "--steps", "0"]) } throws: { error in
      DETRCommand.message(for: error).contains("--steps")
    }
    #expect { try DETRCommand.parseAsRoot(["demo", "--points", "many"]) } throws: { error in
      DETRCommand.message(for: error).contains("many")
    }
    #expect(throws: (any Error).self) { try DETRCommand.parseAsRoot(["no-such-command"]) }
  }
}
