import Detection
import Foundation
import Torch
import TorchNN

/// SD-DETR's mini-detector (reconstructed after DESTR's): two conv towers on the encoder output, a
/// class head on the classification tower and a box head on the localization tower, predicting a
/// box and class scores for every cell. Keys `cls_tower.{i}.{conv, norm}`, `box_tower.{i}.{conv, norm}`,
/// `class_embed`, `bbox_embed`.
final class MiniDetector: Module {
  let classTower: ModuleList<ConvNormReLU>
  let boxTower: ModuleList<ConvNormReLU>
  let classHead: Linear
  let boxHead: MLP
  /// The side of a cell's box before the head's offsets (normalized), as Deformable DETR's proposals.
  static let initialBoxSide = 0.05

  init(dim: Int, classCount: Int, convLayers: Int) {
    classTower = ModuleList((0..<convLayers).map { _ in ConvNormReLU(channels: dim) })
    boxTower = ModuleList((0..<convLayers).map { _ in ConvNormReLU(channels: dim) })
    classHead = Linear(dim, classCount)
    boxHead = MLP(inputDim: dim, hiddenDim: dim, outputDim: 4, layerCount: 3)
    super.init()
    registerModule("cls_tower", classTower)
    registerModule("box_tower", boxTower)
    registerModule("class_embed", classHead)
    registerModule("bbox_embed", boxHead)
  }

  /// Predictions for every cell of the encoded map.
  /// - `memory [hw, batch, d]` (row-major cells of an `h × w` map), `mask [batch, hw]` (true on padding),
  ///   `validRatios [batch, 2]` (the valid share of the map's width, height).
  func callAsFunction(memory: Tensor, mask: Tensor, size: (height: Int, width: Int), validRatios: Tensor) -> CellPredictions {
    let (batch, dim) = (memory.size(1), memory.size(2))
    let map = memory.permuted(1, 2, 0).reshaped(batch, dim, size.height, size.width)
    let classFeatures = classTower.reduce(map) { $1($0) }
    let boxFeatures = boxTower.reduce(map) { $1($0) }
    func cells(_ features: Tensor) -> Tensor { features.flattened(from: 2).transposed(1, 2) }
    let centers = Self.cellCenters(size: size, validRatios: validRatios)
    let prior = Tensor.cat([centers, Tensor.full([batch, size.height * size.width, 2], Self.initialBoxSide, device: memory.device)], dim: -1).inverseSigmoid()
    let padding = mask.unsqueezed(dim: -1)
    return CellPredictions(
      logits: classHead(cells(classFeatures)).filling(where: padding, with: Self.paddingLogit),
      boxes: (boxHead(cells(boxFeatures)) + prior).sigmoid(), classFeatures: classFeatures, boxFeatures: boxFeatures, centers: centers)
  }

  /// The class logit of padded cells: no class, finite so that losses stay finite.
  static let paddingLogit = -100.0

  /// Cell centres `[batch, h·w, 2]` as (x, y) normalized to each image's unpadded part.
  static func cellCenters(size: (height: Int, width: Int), validRatios: Tensor) -> Tensor {
    let ys = (Tensor.arange(size.height, device: validRatios.device).to(.float32) + 0.5).view(size.height, 1).expanded(to: [size.height, size.width])
    let xs = (Tensor.arange(size.width, device: validRatios.device).to(.float32) + 0.5).view(1, size.width).expanded(to: [size.height, size.width])
    let grid = Tensor.stack([xs.reshaped(-1) / Double(size.width), ys.reshaped(-1) / Double(size.height)], dim: 1)
    return grid.unsqueezed(dim: 0) / validRatios.unsqueezed(dim: 1)
  }

  /// The valid share `[batch, 2]` (width, height) of a padding mask `[batch, h, w]`, read from its first row and column.
  static func validRatios(mask: Tensor) -> Tensor {
    let (height, width) = (mask.size(1), mask.size(2))
    let validWidth = mask[.all, 0, .all].logicalNot().to(.float32).sum(dim: 1) / Double(width)
    let validHeight = mask[.all, .all, 0].logicalNot().to(.float32).sum(dim: 1) / Double(height)
    return Tensor.stack([validWidth, validHeight], dim: 1)
  }
}

/// The mini-detector's output: `logits [batch, hw, classes]` (padded cells at `paddingLogit`),
/// `boxes [batch, hw, 4]` (cx, cy, w, h) normalized to each image, the towers' feature maps
/// `[batch, d, h, w]` and the cell centres `[batch, hw, 2]`.
struct CellPredictions {
  var logits: Tensor
  var boxes: Tensor
  var classFeatures: Tensor
  var boxFeatures: Tensor
  var centers: Tensor
}

/// 3×3 convolution, GroupNorm with 32 groups, ReLU. Keys `conv`, `norm`.
final class ConvNormReLU: Module, UnaryLayer {
  let conv: Conv2d
  let norm: GroupNorm

  init(channels: Int) {
    conv = Conv2d(channels, channels, kernelSize: 3, padding: 1)
    norm = GroupNorm(groups: 32, channels: channels)
    super.init()
    registerModule("conv", conv)
    registerModule("norm", norm)
  }

  func callAsFunction(_ input: Tensor) -> Tensor { norm(conv(input)).relu() }
}
