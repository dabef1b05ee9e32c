import Torch

/// What any detector family needs of a batch: the padded images with their padding mask, each
/// image's unpadded size, the size to report detections in and, for training, the targets.
public struct DetectorBatch: @unchecked Sendable {
  /// `[batch, 3, H, W]` float32, normalized; zero in the padding.
  public var images: Tensor
  /// `[batch, H, W]` bool, true on padding.
  public var paddingMask: Tensor
  /// (height, width) of each image inside the padded batch, in pixels of `images`.
  public var imageSizes: [(height: Int, width: Int)]
  /// (height, width) to scale detections to, e.g. each image's size as stored.
  public var outputSizes: [(height: Int, width: Int)]
  /// Ground truth per image (training only): labels and (cx, cy, w, h) normalized to the unpadded image.
  public var targets: [MatchTarget]

  public init(
    images: Tensor, paddingMask: Tensor, imageSizes: [(height: Int, width: Int)], outputSizes: [(height: Int, width: Int)]? = nil,
    targets: [MatchTarget] = []
  ) {
    self.images = images
    self.paddingMask = paddingMask
    self.imageSizes = imageSizes
    self.outputSizes = outputSizes ?? imageSizes
    self.targets = targets
  }

  /// Images of equal size with nothing padded, e.g. for benchmarks.
  public init(unpaddedImages images: Tensor, targets: [MatchTarget] = []) {
    let (batch, height, width) = (images.size(0), images.size(2), images.size(3))
    self.init(
      images: images, paddingMask: Tensor.zeros([batch, height, width], dtype: .bool, device: images.device),
      imageSizes: Array(repeating: (height, width), count: batch), targets: targets)
  }

  public var count: Int { images.size(0) }

  /// The batch on `device`: images, mask and targets. With `pinned`, the images are first copied to
  /// page-locked memory and every copy is asynchronous (ops queued after it on the GPU wait for it),
  /// so the host can prepare the next batch meanwhile. The batch itself when it is there already.
  public func to(device: Device, pinned: Bool = false) -> DetectorBatch {
    guard images.device != device else { return self }
    let asynchronous = pinned && device.isCUDA
    func move(_ tensor: Tensor) -> Tensor { asynchronous ? tensor.pinned().to(device, nonBlocking: true) : tensor.to(device: device) }
    var moved = self
    moved.images = move(images)
    moved.paddingMask = move(paddingMask)
    moved.targets = targets.map { MatchTarget(labels: move($0.labels), boxes: move($0.boxes)) }
    return moved
  }
}
