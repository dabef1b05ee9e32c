import COCO
import COCOEval
import Detection
import Detectors
import Foundation
import Torch

/// Runs a detector over a dataset and scores it as pycocotools would.
public enum DetectorEvaluation {
  /// COCO results for every image of `loader` (boxes in original pixels, original category ids), in
  /// the loader's image order. With `equalSizeBatches` the loader's batches hold images of one padded
  /// size only (`DetectionLoader.equalSizeBatches`), so the detections are those of one image at a time.
  public static func detections(
    of detector: any Detector, loader: DetectionLoader, categories: CategoryMap, precision: Precision = .fp32,
    equalSizeBatches: Bool = false
  ) throws -> [DetectedBox] {
    let wasTraining = detector.isTraining
    detector.eval()
    defer { detector.train(wasTraining) }
    var perImageResults: [Int: [DetectedBox]] = [:]
    let stream = equalSizeBatches ? loader.equalSizeBatches() : loader.batches(epoch: 0)
    while let loaded = try stream.nextBatch() {
      guard let batch = loaded.batch else { continue }
      let perImage = withInferenceMode { precision.run(on: detector.device) { detector.detect(batch.detectorBatch(for: detector)) } }
      for (target, detections) in zip(batch.targets, perImage) {
        perImageResults[target.imageId, default: []] += detections.filtered(threshold: 0, limit: 100).cocoResults(imageId: target.imageId, categories: categories)
      }
    }
    var results: [DetectedBox] = []
    var seen = Set<Int>()
    for index in loader.shardOrder(epoch: 0, fromSample: 0) {
      let imageId = loader.dataset.samples[index].imageId
      if seen.insert(imageId).inserted { results += perImageResults[imageId] ?? [] }
    }
    return results
  }

  /// The pycocotools metrics of `detector` on the dataset behind `loader`, against `annotationsFile`.
  public static func evaluate(_ detector: any Detector, loader: DetectionLoader, categories: CategoryMap, annotationsFile: URL) throws
    -> EvaluationResult
  {
    try evaluateKeepingDetections(detector, loader: loader, categories: categories, annotationsFile: annotationsFile).result
  }

  /// `evaluate`, also returning the detections it scored.
  public static func evaluateKeepingDetections(
    _ detector: any Detector, loader: DetectionLoader, categories: CategoryMap, annotationsFile: URL
  ) throws -> (result: EvaluationResult, detections: [DetectedBox]) {
    let groundTruth = try GroundTruth.load(contentsOf: annotationsFile)
    let found = try detections(of: detector, loader: loader, categories: categories)
    return (COCOEvaluator().evaluate(groundTruth: groundTruth, detections: found), found)
  }
}
