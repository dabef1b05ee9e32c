import ArgumentParser
import Torch

/// The `detr` command line.
public struct DETRCommand: ParsableCommand {
  public static let configuration = CommandConfiguration(
    commandName: "detr",
    abstract: "Train, evaluate and run DETR-family object detectors on libtorch.",
    version: VersionInfo.text,
    subcommands: [TrainCommand.self, PredictCommand.self, EvaluateCommand.self, BenchmarkCommand.self, DataCommand.self, DemoCommand.self, PretrainBackboneCommand.self, CheckCommand.self, CheckDeviceCommand.self, ConvertCommand.self, ServeCommand.self]
  )

  public init() {}
}
