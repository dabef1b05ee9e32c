import ArgumentParser
import Torch

extension Device: ExpressibleByArgument {
  /// `cpu`, `cuda` or `cuda:N`.
  public init?(argument: String) {
    guard let device = Device(argument) else { return nil }
    self = device
  }
}

/// The `--device` help text every command shares.
let deviceHelp = ArgumentHelp(
  "Where the model runs: cpu, cuda or cuda:N (default: the first GPU when libtorch has CUDA and sees one, else the CPU).",
  valueName: "device")

extension Device {
  /// The device a command runs on: the one asked for, checked, else the preferred one. A data-parallel
  /// worker on a GPU takes the GPU of its local rank (`cuda` and `cuda:0` mean "one GPU per worker").
  static func resolve(_ requested: Device?, localRank: Int? = nil) throws -> Device {
    var device = requested ?? .preferred
    if let localRank, case .cuda(let index) = device {
      if index != 0 {
        throw ValidationError("--device \(device) with --nproc-per-node: each worker takes the GPU of its local rank; pass --device cuda")
      }
      device = .cuda(localRank)
    }
    do {
      try device.checkAvailable()
    } catch let error as DeviceError {
      throw CommandFailure(error.message)
    }
    return device
  }
}

/// The `--resize` help text of predict and evaluate.
let resizeHelp = ArgumentHelp(
  "How images are resized: detr (DETR's references and swift-detr's training: 8-bit bilinear, DETR's size rule) or torchvision (its detection models: bilinear on the normalized floats, sides rounded down).",
  valueName: "resizing")
