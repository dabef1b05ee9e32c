import Detection
import Foundation
import Torch
import TorchNN

extension RetinaNetModel {
  /// torchvision's RetinaNet keys → ours (mmdet's), for both of torchvision's layouts: the current
  /// module names (`inner_blocks.{i}.0`, `conv.{i}.0`, `Conv2dNormActivation`) and the legacy ones of
  /// its released checkpoints (`inner_blocks.{i}`, `conv.{0,2,4,6}`: a Sequential with ReLUs between).
  public static let torchvisionKeys: KeyRenaming = {
    var rules: [KeyRenaming.Rule] = [
      .init(#"backbone\.body\.(.+)"#, "backbone.{1}"),
      .init(#"backbone\.fpn\.inner_blocks\.(\d)(?:\.0)?\.(weight|bias)"#, "neck.lateral_convs.{1}.conv.{2}"),
      .init(#"backbone\.fpn\.layer_blocks\.(\d)(?:\.0)?\.(weight|bias)"#, "neck.fpn_convs.{1}.conv.{2}"),
      .init(#"backbone\.fpn\.extra_blocks\.p6\.(weight|bias)"#, "neck.fpn_convs.3.conv.{1}"),
      .init(#"backbone\.fpn\.extra_blocks\.p7\.(weight|bias)"#, "neck.fpn_convs.4.conv.{1}"),
      .init(#"head\.classification_head\.cls_logits\.(weight|bias)"#, "bbox_head.retina_cls.{1}"),
      .init(#"head\.regression_head\.bbox_reg\.(weight|bias)"#, "bbox_head.retina_reg.{1}"),
      .init(#"head\.classification_head\.conv\.(\d+)\.0\.(weight|bias)"#, "bbox_head.cls_convs.{1}.conv.{2}"),
      .init(#"head\.regression_head\.conv\.(\d+)\.0\.(weight|bias)"#, "bbox_head.reg_convs.{1}.conv.{2}"),
    ]
    // Legacy towers: Sequential(conv, ReLU, conv, ReLU, ...): conv i at index 2i.
    for index in 0..<8 {
      rules.append(.init(#"head\.classification_head\.conv\.\#(2 * index)\.(weight|bias)"#, "bbox_head.cls_convs.\(index).conv.{1}"))
      rules.append(.init(#"head\.regression_head\.conv\.\#(2 * index)\.(weight|bias)"#, "bbox_head.reg_convs.\(index).conv.{1}"))
    }
    return KeyRenaming(rules: rules)
  }()

  /// Loads a torchvision RetinaNet state dict (either layout) strictly: every key must find its place
  /// with the right shape, and every weight of the model must be given.
  public func load(torchvision stateDict: [String: Tensor]) throws {
    let report = try load(stateDict: Self.torchvisionKeys.rename(stateDict.filter { !$0.key.hasSuffix("num_batches_tracked") }), strict: false)
    guard report.isComplete else {
      throw CheckpointError(
        path: "torchvision state dict",
        problem: "does not fit this RetinaNet (\(report.summaryNaming(atMost: 6))); torchvision's COCO weights need --preset r50-torchvision")
    }
  }
}
