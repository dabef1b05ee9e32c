/// The matches of one image and category in one area range (pycocotools' `evaluateImg`).
struct ImageEvaluation {
  /// Scores of the kept detections, highest first (at most the largest max-detections).
  var detectionScores: [Double]
  /// `[threshold][detection]`: whether the detection matched a ground truth (a nonzero id, as pycocotools).
  var detectionMatched: [[Bool]]
  /// `[threshold][detection]`: whether the detection is ignored.
  var detectionIgnored: [[Bool]]
  /// Per ground truth (ignored ones last): whether it is ignored.
  var groundTruthIgnored: [Bool]
}

/// One image and category, with the boxes in file order, ready to be matched in each area range.
struct ImageCategoryCell {
  var groundTruths: [GroundTruthBox]
  /// Detections sorted by score, highest first (stable), cut to the largest max-detections.
  var detections: [DetectedBox]
  /// IoU `[detection][groundTruth]` for the sorted detections and ground truths in file order.
  var ious: [[Double]]

  init(groundTruths: [GroundTruthBox], detections unsorted: [DetectedBox], maxDetections: Int) {
    self.groundTruths = groundTruths
    let order = unsorted.indices.sorted { unsorted[$0].score > unsorted[$1].score || (unsorted[$0].score == unsorted[$1].score && $0 < $1) }
    detections = order.prefix(maxDetections).map { unsorted[$0] }
    ious = boxIoU(detections: detections.map(\.box), groundTruths: groundTruths.map(\.box), crowd: groundTruths.map(\.isCrowd))
  }

  /// Greedy matching at each IoU threshold, exactly as pycocotools: detections by score; each takes
  /// the best still-free ground truth (crowds can take many), preferring regular over ignored ones.
  func evaluate(area: (low: Double, high: Double), maxDetections: Int, iouThresholds: [Double]) -> ImageEvaluation? {
    if groundTruths.isEmpty && detections.isEmpty { return nil }
    let ignoredInRange = groundTruths.map { $0.isCrowd || $0.area < area.low || $0.area > area.high }
    // Regular ground truths first, ignored last, each group in file order (a stable sort).
    let order = groundTruths.indices.filter { !ignoredInRange[$0] } + groundTruths.indices.filter { ignoredInRange[$0] }
    let gtIgnored = order.map { ignoredInRange[$0] }
    let gtCrowd = order.map { groundTruths[$0].isCrowd }
    let gtIds = order.map { groundTruths[$0].id }
    let dets = Array(detections.prefix(maxDetections))
    let thresholds = iouThresholds.count
    var matched = Array(repeating: Array(repeating: false, count: dets.count), count: thresholds)
    var ignored = Array(repeating: Array(repeating: false, count: dets.count), count: thresholds)
    if !order.isEmpty && !dets.isEmpty {
      for (t, threshold) in iouThresholds.enumerated() {
        var gtTaken = Array(repeating: false, count: order.count)
        for d in dets.indices {
          var best = Swift.min(threshold, 1 - 1e-10)
          var match = -1
          for g in order.indices {
            if gtTaken[g] && !gtCrowd[g] { continue }
            if match > -1 && !gtIgnored[match] && gtIgnored[g] { break }
            let iou = ious[d][order[g]]
            if iou < best { continue }
            best = iou
            match = g
          }
          if match == -1 { continue }
          ignored[t][d] = gtIgnored[match]
          // pycocotools records the ground truth's id and later reads 0 as "no match".
          matched[t][d] = gtIds[match] != 0
          gtTaken[match] = true
        }
      }
    }
    // Unmatched detections outside the area range do not count either way.
    for d in dets.indices {
      let detectionArea = dets[d].box[2] * dets[d].box[3]
      if detectionArea < area.low || detectionArea > area.high {
        for t in 0..<thresholds where !matched[t][d] { ignored[t][d] = true }
      }
    }
    return ImageEvaluation(
      detectionScores: dets.map(\.score), detectionMatched: matched, detectionIgnored: ignored, groundTruthIgnored: gtIgnored)
  }
}
