// swift-tools-version: 6.1
// A program that uses swift-detr as a library: detects the objects of an image with a checkpoint folder.
import PackageDescription

let package = Package(
  name: "DetectObjects",
  platforms: [.macOS(.v14)],
  dependencies: [.package(name: "swift-detr", path: "../..")],
  targets: [
    .executableTarget(
      name: "DetectObjects",
      dependencies: [.product(name: "Training", package: "swift-detr"), .product(name: "COCO", package: "swift-detr")])
  ],
  swiftLanguageModes: [.v6]
)
