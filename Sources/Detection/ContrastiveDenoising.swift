import Torch
import TorchNN

/// Contrastive denoising (DINO, Zhang et al. 2023; DN-DETR, Li et al. 2022): in training, noised
/// copies of the ground truth enter the decoder as extra queries. Each group holds a positive copy
/// of every box (corners moved by less than half the box size), which must reconstruct its box and
/// label, and a negative copy (moved by half to once the size), which must predict "no object".
/// Labels are also flipped to random classes. As detrex builds them: `queryCount` (`dn_number`)
/// gives `max(1, queryCount / max boxes per image)` groups.
public struct ContrastiveDenoising: Sendable, Equatable {
  public var queryCount: Int
  /// Each label is replaced with a random class with probability `labelNoiseRatio / 2`.
  public var labelNoiseRatio: Double
  public var boxNoiseScale: Double
  public var classCount: Int

  public init(queryCount: Int, labelNoiseRatio: Double, boxNoiseScale: Double, classCount: Int) {
    self.queryCount = queryCount
    self.labelNoiseRatio = labelNoiseRatio
    self.boxNoiseScale = boxNoiseScale
    self.classCount = classCount
  }

  /// The groups for a batch's targets, nil when there is nothing to denoise.
  public func groups(for targets: [MatchTarget]) -> DenoisingGroups? {
    let counts = targets.map { $0.labels.size(0) }
    guard queryCount > 0, let most = counts.max(), most > 0 else { return nil }
    return DenoisingGroups(groupCount: Swift.max(1, queryCount / most), maxTargets: most, targetCounts: counts)
  }

  /// Noised copies of the targets drawn from the default generator: labels `[copies · boxes]` and
  /// boxes `[copies · boxes, 4]` (cx, cy, w, h), copy-major (positive, negative, positive, ...),
  /// the batch's boxes in image order within each copy. The draws come in detrex's order.
  public func noised(_ targets: [MatchTarget], groups: DenoisingGroups) -> NoisedTargets {
    let copies = 2 * groups.groupCount
    let boxCount = groups.targetCounts.reduce(0, +)
    let count = copies * boxCount
    var labels = Tensor.cat(targets.map(\.labels)).to(.int64).repeated([copies])
    var boxes = Tensor.cat(targets.map { $0.boxes.to(.float32) }).repeated([copies, 1])
    // The draws are made on the CPU (the same noise on every device for a seed), then moved.
    let device = labels.device
    if labelNoiseRatio > 0 {
      let draws = Tensor.rand([count]).to(device: device)
      let chosen = (draws .< labelNoiseRatio * 0.5).nonzero().view(-1)
      let replacements = Tensor.randint(0, classCount, [chosen.size(0)]).to(device: device)
      labels = labels.scattering(dim: 0, index: chosen, source: replacements)
    }
    if boxNoiseScale > 0 {
      let signs = Tensor.randint(0, 2, [count, 4]).to(dtype: .float32, device: device) * 2 - 1
      var magnitudes = Tensor.rand([count, 4]).to(device: device)
      // Negatives (every second copy) move by [1, 2) half-sizes.
      let negative = Tensor((0..<count).map { Float(($0 / boxCount) % 2) }, shape: [count, 1]).to(device: device)
      magnitudes = (magnitudes + negative) * signs
      let centers = boxes[.all, 0..<2]
      let halfSizes = boxes[.all, 2..<4] / 2
      var corners = Tensor.cat([centers - halfSizes, centers + halfSizes], dim: 1)
      corners = corners + magnitudes * Tensor.cat([halfSizes, halfSizes], dim: 1) * boxNoiseScale
      corners = corners.clamped(min: 0, max: 1)
      boxes = Tensor.cat([(corners[.all, 0..<2] + corners[.all, 2..<4]) / 2, corners[.all, 2..<4] - corners[.all, 0..<2]], dim: 1)
    }
    return NoisedTargets(labels: labels, boxes: boxes)
  }
}

/// How a batch's denoising queries are laid out: `groupCount` groups, each of two copies
/// (positive, negative) of `maxTargets` slots; an image with fewer boxes leaves slots empty
/// (zero content, box logits 0).
public struct DenoisingGroups: Sendable, Equatable {
  public var groupCount: Int
  public var maxTargets: Int
  /// Boxes of each image.
  public var targetCounts: [Int]

  /// Denoising queries per image: `2 · maxTargets · groupCount`.
  public var queryCount: Int { 2 * maxTargets * groupCount }

  public init(groupCount: Int, maxTargets: Int, targetCounts: [Int]) {
    self.groupCount = groupCount
    self.maxTargets = maxTargets
    self.targetCounts = targetCounts
  }

  /// The decoder inputs: `content [batch, queryCount, d]` (the noised labels' embeddings) and
  /// `boxLogits [batch, queryCount, 4]` (inverse sigmoid of the noised boxes, ε 1e-3 as detrex).
  public func queries(_ noised: NoisedTargets, labelEmbedding: Embedding) -> (content: Tensor, boxLogits: Tensor) {
    let batch = targetCounts.count
    let dim = labelEmbedding.weight.size(1)
    var images: [Int] = []
    var slots: [Int] = []
    for copy in 0..<(2 * groupCount) {
      for (image, count) in targetCounts.enumerated() {
        images += Array(repeating: image, count: count)
        slots += (0..<count).map { copy * maxTargets + $0 }
      }
    }
    let device = labelEmbedding.weight.device
    let imageIndex = Tensor(images, shape: [images.count]).to(device: device)
    let slotIndex = Tensor(slots, shape: [slots.count]).to(device: device)
    let content = Tensor.zeros([batch, queryCount, dim], device: device)
    content[imageIndex, slotIndex] = labelEmbedding(noised.labels)
    let boxLogits = Tensor.zeros([batch, queryCount, 4], device: device)
    boxLogits[imageIndex, slotIndex] = noised.boxes.inverseSigmoid(epsilon: 1e-3)
    return (content, boxLogits)
  }

  /// The self-attention mask over `[denoising queries, matching queries]`, bool
  /// `[queryCount + matching, queryCount + matching]`, true where the row's query must not see the
  /// column's: matching queries see no denoising query, and each group sees no other group.
  public func attentionMask(matchingQueries: Int, device: Device = .cpu) -> Tensor {
    let position = Tensor.arange(queryCount + matchingQueries, device: device)
    let (row, column) = (position.view(-1, 1), position.view(1, -1))
    let group = position.floorDivided(by: 2 * maxTargets)
    let blocked = (row .>= queryCount) .| (group.view(-1, 1) .!= group.view(1, -1))
    return blocked .& (column .< queryCount)
  }

  /// For each image, which denoising queries reconstruct which of its boxes: the positive copy of
  /// box t in group g is query `g · 2 · maxTargets + t`.
  public var matches: [(queries: [Int], targets: [Int])] {
    targetCounts.map { count in
      let groups = 0..<groupCount
      return (groups.flatMap { group in (0..<count).map { group * 2 * maxTargets + $0 } }, groups.flatMap { _ in Array(0..<count) })
    }
  }
}

/// Noised copies of the ground truth, copy-major: `labels [n]` int64, `boxes [n, 4]` (cx, cy, w, h) in [0, 1].
public struct NoisedTargets: @unchecked Sendable {
  public var labels: Tensor
  public var boxes: Tensor

  public init(labels: Tensor, boxes: Tensor) {
    self.labels = labels
    self.boxes = boxes
  }
}
