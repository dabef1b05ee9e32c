import Torch

/// What `detr --version` prints: this package's version, libtorch's, and whether CUDA is usable.
public enum VersionInfo {
  public static let packageVersion = "0.1.0"

  public static var text: String {
    let cuda = Torch.isCUDAAvailable ? "available (\(Torch.cudaDeviceCount) device(s))" : "not available"
    return "detr \(packageVersion) (libtorch \(Torch.libtorchVersion), CUDA \(cuda))"
  }
}
