import COCO
import Foundation

// Draws 100 captioned boxes on a 1333×800 image (the size DETR's recipe resizes to) and prints the
// time per drawing: median and best of 30, after 3 warm-up runs. Goal: under 50 ms.
let base = Image(width: 1333, height: 800, color: RGB(90, 120, 150))
var random = SystemRandomNumberGenerator()
let boxes = (0..<100).map { index -> DrawnBox in
  let x = Double.random(in: 0..<1200, using: &random)
  let y = Double.random(in: 0..<700, using: &random)
  return DrawnBox(
    box: [x, y, x + Double.random(in: 20..<300, using: &random), y + Double.random(in: 20..<200, using: &random)],
    classIndex: index % 80, caption: "category \(index % 80) 0.\(50 + index % 50)")
}
var times: [Double] = []
for run in 0..<33 {
  var image = base
  let start = DispatchTime.now().uptimeNanoseconds
  image.draw(boxes)
  let milliseconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
  if run >= 3 { times.append(milliseconds) }
}
times.sort()
print(String(format: "100 boxes on 1333x800: median %.1f ms, best %.1f ms (30 runs)", times[times.count / 2], times[0]))
