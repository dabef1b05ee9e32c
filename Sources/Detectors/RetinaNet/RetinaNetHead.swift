import Detection
import Foundation
import Torch
import TorchNN

/// RetinaNet's head, shared by every level: a classification tower and a box tower of 3×3
/// convolutions with ReLU, then `retina_cls` (A·K logits), `retina_reg` (A·4 deltas) and, for DSA's
/// object-confidence task, `retina_iou` (A IoU logits) on the classification tower. Keys as mmdet's:
/// `cls_convs.{i}.conv`, `reg_convs.{i}.conv`, `retina_cls`, `retina_reg`, `retina_iou`.
final class RetinaNetHead: Module {
  let classTower: ModuleList<ConvModule>
  let boxTower: ModuleList<ConvModule>
  let classifier: Conv2d
  let regressor: Conv2d
  let confidence: Conv2d?

  init(config: RetinaNetConfig) {
    let (c, anchors) = (config.channels, config.anchors.anchorsPerLocation)
    classTower = ModuleList((0..<config.towerConvolutions).map { _ in ConvModule(Conv2d(c, c, kernelSize: 3, padding: 1)) })
    boxTower = ModuleList((0..<config.towerConvolutions).map { _ in ConvModule(Conv2d(c, c, kernelSize: 3, padding: 1)) })
    classifier = Conv2d(c, anchors * config.classCount, kernelSize: 3, padding: 1)
    regressor = Conv2d(c, anchors * 4, kernelSize: 3, padding: 1)
    confidence = config.objectConfidence ? Conv2d(c, anchors, kernelSize: 3, padding: 1) : nil
    super.init()
    registerModule("cls_convs", classTower)
    registerModule("reg_convs", boxTower)
    registerModule("retina_cls", classifier)
    registerModule("retina_reg", regressor)
    if let confidence { registerModule("retina_iou", confidence) }
    // The reference initialization: N(0, 0.01), bias 0; class bias for a prior probability of 0.01.
    for conv in (Array(classTower) + Array(boxTower)).map(\.conv) + [classifier, regressor] + [confidence].compactMap({ $0 }) {
      Initialization.normal(conv.weight, standardDeviation: 0.01)
      Initialization.constant(conv.bias!, 0)
    }
    Initialization.constant(classifier.bias!, -Foundation.log((1 - 0.01) / 0.01))
  }

  /// A level's raw outputs: logits `[batch, A·K, H, W]`, deltas `[batch, A·4, H, W]`, IoU logits `[batch, A, H, W]`.
  func callAsFunction(_ features: LevelFeatures) -> (logits: Tensor, deltas: Tensor, confidence: Tensor?) {
    let classFeatures = classTower.reduce(features.classification) { $1($0).relu() }
    let boxFeatures = boxTower.reduce(features.localization) { $1($0).relu() }
    return (classifier(classFeatures), regressor(boxFeatures), confidence.map { $0(classFeatures) })
  }
}
