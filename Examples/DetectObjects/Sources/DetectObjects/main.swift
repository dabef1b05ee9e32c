import COCO
import Foundation
import Training

// Usage: DetectObjects CHECKPOINT_FOLDER IMAGE [OUTPUT.jpg]
// The folder is a swift-detr checkpoint (a run's best/, `detr convert` output) or a transformers folder.
let arguments = CommandLine.arguments
guard arguments.count >= 3 else {
  print("usage: DetectObjects CHECKPOINT_FOLDER IMAGE [OUTPUT.jpg]")
  exit(64)
}
do {
  let detector = try DetectorCheckpoint.load(URL(fileURLWithPath: arguments[1]))
  var image = try Image(contentsOf: URL(fileURLWithPath: arguments[2]))
  let objects = detector.detect(image, threshold: 0.5)
  for object in objects {
    print(object.name, String(format: "%.2f", object.score), object.box.map { Int($0.rounded()) })
  }
  if arguments.count > 3 {
    image.draw(objects.map { DrawnBox(box: $0.box, classIndex: detector.categories.index(ofCategory: $0.categoryId) ?? 0, caption: $0.name) })
    try image.write(to: URL(fileURLWithPath: arguments[3]))
  }
} catch {
  print("error: \(error)")
  exit(1)
}
