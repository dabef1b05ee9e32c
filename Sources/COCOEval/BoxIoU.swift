/// IoU of detections against ground truths as pycocotools' `bbIou`: boxes are [x, y, w, h]; for a
/// crowd ground truth the union is the detection's own area. Returns `[detection][groundTruth]`.
func boxIoU(detections: [[Double]], groundTruths: [[Double]], crowd: [Bool]) -> [[Double]] {
  var result = Array(repeating: Array(repeating: 0.0, count: groundTruths.count), count: detections.count)
  for (g, gt) in groundTruths.enumerated() {
    let gtArea = gt[2] * gt[3]
    for (d, dt) in detections.enumerated() {
      let width = Swift.min(dt[2] + dt[0], gt[2] + gt[0]) - Swift.max(dt[0], gt[0])
      if width <= 0 { continue }
      let height = Swift.min(dt[3] + dt[1], gt[3] + gt[1]) - Swift.max(dt[1], gt[1])
      if height <= 0 { continue }
      let intersection = width * height
      let dtArea = dt[2] * dt[3]
      let union = crowd[g] ? dtArea : dtArea + gtArea - intersection
      result[d][g] = intersection / union
    }
  }
  return result
}
