// Loader throughput: images per second through decode + DETR's training transform + batching, on
// COCO-like images (640×480 JPEG), with the given worker count. Usage: loader-throughput [images] [workers]
// With a .json file as the argument, times reading that COCO annotation file instead.
import COCO
import Foundation

if let path = CommandLine.arguments.dropFirst().first, path.hasSuffix(".json") {
  let start = Date()
  let annotations = try COCOAnnotations.load(contentsOf: URL(fileURLWithPath: path))
  let megabytes = Double((try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0) / 1_048_576
  print(
    "\(path): \(String(format: "%.0f", megabytes)) MiB, \(annotations.images.count) images, \(annotations.annotations.count) annotations in \(String(format: "%.2f", Date().timeIntervalSince(start))) s"
  )
  exit(0)
}

let count = Int(CommandLine.arguments.dropFirst().first ?? "") ?? 64
let workers = Int(CommandLine.arguments.dropFirst(2).first ?? "") ?? 2
let folder = FileManager.default.temporaryDirectory.appendingPathComponent("loader-throughput-\(ProcessInfo.processInfo.processIdentifier)")
defer { try? FileManager.default.removeItem(at: folder) }
try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)

// COCO-like files: 640×480 textured JPEGs with a few boxes each.
var images: [COCOAnnotations.ImageInfo] = []
var annotations: [COCOAnnotations.Annotation] = []
var random = SeededRandom(seed: 1)
for index in 0..<count {
  var image = Image(width: 640, height: 480)
  for y in 0..<480 { for x in 0..<640 { image[x, y] = RGB(UInt8((x * 3 + y) % 256), UInt8((x ^ y) % 256), UInt8(random.integer(0, 255))) } }
  let name = "\(index).jpg"
  try image.write(to: folder.appendingPathComponent(name), jpegQuality: 90)
  images.append(.init(id: index + 1, fileName: name, width: 640, height: 480))
  for k in 0..<7 {
    annotations.append(.init(id: index * 10 + k + 1, imageId: index + 1, categoryId: 1, bbox: [Double(k * 60), Double(k * 40), 120, 90]))
  }
}
let dataset = try DetectionDataset(
  annotations: COCOAnnotations(images: images, annotations: annotations, categories: [.init(id: 1, name: "thing")]), imageDirectory: folder)
let loader = DetectionLoader(
  dataset: dataset, transform: DETRTransform(mode: .training), batchSize: 2, shuffle: true, seed: 0, workerCount: workers,
  prefetchBatches: 4)
for epoch in 0..<2 {
  let start = Date()
  var loaded = 0
  for batch in loader.batches(epoch: epoch) { loaded += batch.batch?.targets.count ?? 0 }
  let seconds = Date().timeIntervalSince(start)
  print(
    "epoch \(epoch): \(loaded) images in \(String(format: "%.2f", seconds)) s = \(String(format: "%.1f", Double(loaded) / seconds)) images/s with \(workers) workers"
  )
}
