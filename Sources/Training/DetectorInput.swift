import COCO
import Foundation

/// How an image becomes a detector's input: resized so that its shorter side is `shorterSide` and its
/// longer side at most `maxSize`, by `resizing`. A checkpoint that swift-detr trained records the
/// evaluation resize of its training (in its `config.json`, as `"input"`), and `predict`, `evaluate`,
/// `serve` and `LoadedDetector.detect` use it unless told otherwise: a model trained on 160-pixel images
/// finds nothing in the same images upscaled to DETR's 800.
public struct DetectorInput: Codable, Sendable, Equatable, CustomStringConvertible {
  public var shorterSide: Int
  public var maxSize: Int
  public var resizing: DETRTransform.Resizing

  public init(shorterSide: Int, maxSize: Int, resizing: DETRTransform.Resizing = .detr) {
    (self.shorterSide, self.maxSize, self.resizing) = (shorterSide, maxSize, resizing)
  }

  /// DETR's evaluation size (800, at most 1333): the input of checkpoints that record none (converted
  /// official checkpoints and transformers folders, all trained at COCO's scale).
  public static let cocoScale = DetectorInput(shorterSide: 800, maxSize: 1333)

  /// The evaluation resize of a transform (the one a model trained with it is evaluated at).
  public init(evaluationOf transform: DETRTransform) {
    self.init(shorterSide: transform.evaluationSize, maxSize: transform.maxSize, resizing: transform.resizing)
  }

  /// The evaluation transform that resizes this way.
  public var evaluationTransform: DETRTransform {
    var transform = DETRTransform(mode: .evaluation)
    (transform.evaluationSize, transform.maxSize, transform.resizing) = (shorterSide, maxSize, resizing)
    return transform
  }

  /// This input with shorter side `side`, the longer side's limit scaled with it (keeping the ratio).
  public func withShorterSide(_ side: Int) -> DetectorInput {
    let limit = side == shorterSide ? maxSize : Swift.max(side, Int((Double(maxSize) * Double(side) / Double(shorterSide)).rounded()))
    return DetectorInput(shorterSide: side, maxSize: limit, resizing: resizing)
  }

  public var description: String { "shorter side \(shorterSide), longer side at most \(maxSize)\(resizing == .detr ? "" : ", \(resizing.rawValue) resizing")" }

  enum CodingKeys: String, CodingKey {
    case shorterSide = "shorter_side", maxSize = "max_size", resizing
  }
}

extension LoadedDetector {
  /// The input size to use: the one the checkpoint records, else COCO's (800/1333).
  public var defaultInput: DetectorInput { input ?? .cocoScale }

  /// `defaultInput` with what is given replaced; a `shorterSide` without `maxSize` scales the default's
  /// longer-side limit with it (keeping DETR's 800:1333 ratio, or the checkpoint's).
  public func resolvedInput(shorterSide: Int? = nil, maxSize: Int? = nil, resizing: DETRTransform.Resizing? = nil) -> DetectorInput {
    var input = shorterSide.map { defaultInput.withShorterSide($0) } ?? defaultInput
    if let maxSize { input.maxSize = maxSize }
    if let resizing { input.resizing = resizing }
    return input
  }
}
