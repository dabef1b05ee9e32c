import COCO
import COCOEval
import Foundation

/// What a training run shows in TensorBoard: every loss term, the learning rate and images/s at each
/// logged step; after each evaluation the COCO statistics, each category's AP and a few validation
/// images with their predictions drawn. One event file per run: a resumed run continues the newest
/// file in its folder with a restart at the step after its checkpoint, so TensorBoard drops what the
/// killed run logged past it.
final class TrainingEvents {
  static let statisticNames = [
    "ap", "ap50", "ap75", "ap_small", "ap_medium", "ap_large", "ar1", "ar10", "ar100", "ar_small", "ar_medium", "ar_large",
  ]
  /// How many validation images are drawn after each evaluation.
  static let drawnImages = 4
  let file: EventFile

  /// A new run starts a new event file; a resumed one continues the newest in its folder.
  init(folder: URL, resumedAtStep step: Int) throws {
    let existing = ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).filter { $0.hasPrefix("events.out.tfevents.") }
    let newest = existing.max { a, b in
      let modified = { (name: String) in
        (try? FileManager.default.attributesOfItem(atPath: folder.appendingPathComponent(name).path)[.modificationDate] as? Date) ?? .distantPast
      }
      return modified(a) < modified(b)
    }
    if step > 0, let newest {
      file = try EventFile(continuing: folder.appendingPathComponent(newest))
    } else {
      file = try EventFile(folder: folder)
    }
    if step > 0 { try file.restart(atStep: step + 1) }
  }

  func logStep(_ step: Int, losses: StepLosses, learningRate: Double, imagesPerSecond: Double) throws {
    try file.scalar("train/loss", losses.total, step: step)
    for term in losses.terms { try file.scalar("train/\(term.name)", term.value, step: step) }
    try file.scalar("train/learning_rate", learningRate, step: step)
    try file.scalar("train/images_per_second", imagesPerSecond, step: step)
    try file.flush()
  }

  /// `weights` "ema" logs under `val_ema/`.
  func logEvaluation(_ result: EvaluationResult, step: Int, weights: String? = nil) throws {
    let group = weights.map { "val_\($0)" } ?? "val"
    for (name, value) in zip(Self.statisticNames, result.stats) { try file.scalar("\(group)/\(name)", value, step: step) }
    let perCategory = result.averagePrecisionPerCategory
    for (id, name) in zip(result.categoryIds, result.categoryNames) {
      guard let ap = perCategory[id], ap >= 0 else { continue }
      try file.scalar("\(group)/ap_per_category/\(name)", ap, step: step)
    }
    try file.flush()
  }

  /// The first validation images with the detections scoring above `threshold` drawn.
  func logPredictions(
    _ detections: [DetectedBox], samples: [DetectionDataset.Sample], categories: CategoryMap, step: Int, threshold: Double = 0.3
  ) throws {
    for (index, sample) in samples.prefix(Self.drawnImages).enumerated() {
      var image = try Image(contentsOf: sample.url)
      let boxes = detections.filter { $0.imageId == sample.imageId && $0.score > threshold }.compactMap { found -> DrawnBox? in
        guard let label = categories.index(ofCategory: found.categoryId) else { return nil }
        let (x, y, w, h) = (found.box[0], found.box[1], found.box[2], found.box[3])
        return DrawnBox(box: [x, y, x + w, y + h], classIndex: label, caption: "\(categories.name(ofIndex: label)) \(String(format: "%.2f", found.score))")
      }
      image.draw(boxes)
      try file.image("val/predictions/\(index)", png: [UInt8](image.pngData()), width: image.width, height: image.height, step: step)
    }
    try file.flush()
  }
}
