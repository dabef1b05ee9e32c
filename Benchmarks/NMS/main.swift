// Class-wise NMS speed: 20,000 random boxes over 80 classes (RetinaNet's worst case after the
// per-level candidates), IoU 0.5, the median of 30 runs after 3 warm-ups, on one thread.
//   swift build -c release --product nms-benchmark && .build/release/nms-benchmark [boxes] [classes]
import Detection
import Foundation
import Torch

let arguments = CommandLine.arguments.dropFirst().compactMap { Int($0) }
let (count, classes) = (arguments.first ?? 20_000, arguments.dropFirst().first ?? 80)
Torch.threadCount = 1
let generator = Generator(seed: 0)
let corners = Tensor.rand([count, 2], generator: generator) * 800
let boxes = Tensor.cat([corners, corners + Tensor.rand([count, 2], generator: generator) * 200 + 8], dim: 1)
let scores = Tensor.rand([count], generator: generator)
let labels = (Tensor.rand([count], generator: generator) * Double(classes)).to(.int64)
var times: [Double] = []
var kept = 0
for run in 0..<33 {
  let start = DispatchTime.now().uptimeNanoseconds
  kept = Boxes.batchedNonMaximumSuppression(boxes, scores: scores, classes: labels, iouThreshold: 0.5).size(0)
  if run >= 3 { times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6) }
}
times.sort()
print(
  String(
    format: "class-wise NMS of %d boxes over %d classes (IoU 0.5, 1 thread): median %.2f ms, best %.2f ms; %d kept", count, classes,
    times[times.count / 2], times[0], kept))
