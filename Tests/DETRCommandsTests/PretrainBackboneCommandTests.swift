import ArgumentParser
import Foundation
import Testing
import Torch

@testable import DETRCommands

/// `detr pretrain-backbone`: its flags' errors name the flag, and what it writes is what
/// `detr train --backbone-weights` reads (the family's backbone, its record beside it).
@Suite struct PretrainBackboneCommandTests {
  @Test func badFlagsAreRejectedWithTheirName() {
    for (flags, named) in [
      (["--output", "weights.pth"], "--output"), (["--crop-size", "8"], "--crop-size"), (["--batch-size", "1"], "--batch-size"),
      (["--preset", "r18"], "--preset r18"), (["--learning-rate", "0"], "--learning-rate"),
    ] {
      #expect { try DETRCommand.parseAsRoot(["pretrain-backbone"] + flags) } throws: { error in
        DETRCommand.message(for: error).contains(named)
      }
    }
  }

  @Test func anUnknownConfigFieldIsNamed() throws {
    let output = FileManager.default.temporaryDirectory.appendingPathComponent("unknown-field-\(UUID()).safetensors")
    var command = try DETRCommand.parseAsRoot(["pretrain-backbone", "--set", "backbone.no_such_field=1", "--output", output.path])
    #expect { try command.run() } throws: { error in DETRCommand.message(for: error).contains("no_such_field") }
    #expect(!FileManager.default.fileExists(atPath: output.path), "nothing written")
  }

  @Test func itsWeightsStartATrainingRun() throws {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("pretrain-command-\(UUID())")
    defer { try? FileManager.default.removeItem(at: folder) }
    let weights = folder.appendingPathComponent("backbone/tiny.safetensors")
    let tiny = [
      "--set", "backbone.blocks_per_stage=[1,1,1,1]", "--set", "backbone.stem_channels=8", "--set", "backbone.stage_channels=[8,16,32,64]",
    ]
    var pretrain = try DETRCommand.parseAsRoot(
      ["pretrain-backbone", "--model", "deformable-detr"] + tiny
        + ["--images", "20", "--image-size", "96", "--crop-size", "32", "--epochs", "1", "--batch-size", "16", "--output", weights.path])
    try pretrain.run()
    let record = try JSONSerialization.jsonObject(with: Data(contentsOf: weights.deletingPathExtension().appendingPathExtension("json"))) as! [String: Any]
    #expect((record["epochs"] as? [[String: Any]])?.count == 1 && (record["classes"] as? [String])?.first == "background")
    var train = try DETRCommand.parseAsRoot(
      ["train", "--model", "deformable-detr", "--preset", "small"] + tiny
        + ["--backbone-weights", weights.path, "--synthetic-images", "16", "--synthetic-size", "96", "--epochs", "1", "--max-iterations", "1",
          "--output", folder.appendingPathComponent("run").path])
    try train.run()
    #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent("run/last/model.safetensors").path))
  }
}
