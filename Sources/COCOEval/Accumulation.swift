/// Precision and recall over all images, as pycocotools' `accumulate`.
///
/// `precision[t][r][k][a][m]` (IoU threshold, recall threshold, category, area range, max detections)
/// and `recall[t][k][a][m]`; -1 where a category has no regular ground truth in that area range.
struct Accumulation {
  var precision: [[[[[Double]]]]]
  var recall: [[[[Double]]]]

  /// `evaluations[k][a][i]`: category k, area range a, image i (nil when neither boxes nor detections).
  init(evaluations: [[[ImageEvaluation?]]], parameters: EvaluationParameters) {
    let T = parameters.iouThresholds.count
    let R = parameters.recallThresholds.count
    let K = evaluations.count
    let A = parameters.areaRanges.count
    let M = parameters.maxDetections.count
    precision = Array(
      repeating: Array(repeating: Array(repeating: Array(repeating: Array(repeating: -1, count: M), count: A), count: K), count: R),
      count: T)
    recall = Array(repeating: Array(repeating: Array(repeating: Array(repeating: -1, count: M), count: A), count: K), count: T)
    for k in 0..<K {
      for a in 0..<A {
        let images = evaluations[k][a].compactMap { $0 }
        if images.isEmpty { continue }
        let regularGroundTruths = images.reduce(0) { $0 + $1.groundTruthIgnored.filter { !$0 }.count }
        if regularGroundTruths == 0 { continue }
        for (m, maxDetections) in parameters.maxDetections.enumerated() {
          // Detections of every image (image order, then score order), cut per image, then sorted
          // by score with a stable sort, as numpy's mergesort.
          var scores: [Double] = []
          var source: [(image: Int, detection: Int)] = []
          for (i, image) in images.enumerated() {
            for d in 0..<Swift.min(maxDetections, image.detectionScores.count) {
              scores.append(image.detectionScores[d])
              source.append((i, d))
            }
          }
          let order = scores.indices.sorted { scores[$0] > scores[$1] || (scores[$0] == scores[$1] && $0 < $1) }
          for t in 0..<T {
            var truePositives = 0.0
            var falsePositives = 0.0
            var recalls: [Double] = []
            var precisions: [Double] = []
            recalls.reserveCapacity(order.count)
            precisions.reserveCapacity(order.count)
            for index in order {
              let (i, d) = source[index]
              if images[i].detectionIgnored[t][d] {
                // Ignored detections add nothing but still occupy a position in the curve.
              } else if images[i].detectionMatched[t][d] {
                truePositives += 1
              } else {
                falsePositives += 1
              }
              recalls.append(truePositives / Double(regularGroundTruths))
              precisions.append(truePositives / (falsePositives + truePositives + Double.ulpOfOne))
            }
            recall[t][k][a][m] = recalls.last ?? 0
            // Make precision monotonically decreasing, from the end.
            if precisions.count > 1 {
              for i in stride(from: precisions.count - 1, to: 0, by: -1) where precisions[i] > precisions[i - 1] {
                precisions[i - 1] = precisions[i]
              }
            }
            // For each recall threshold, the first position reaching it (numpy searchsorted, left).
            var position = 0
            for (r, threshold) in parameters.recallThresholds.enumerated() {
              while position < recalls.count && recalls[position] < threshold { position += 1 }
              if position >= recalls.count {
                for rest in r..<R { precision[t][rest][k][a][m] = 0 }
                break
              }
              precision[t][r][k][a][m] = precisions[position]
            }
          }
        }
      }
    }
  }
}
