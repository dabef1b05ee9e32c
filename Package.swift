// swift-tools-version: 6.1
import PackageDescription

let package = Package(
  name: "swift-detr",
  platforms: [.macOS(.v14)],
  products: [
    .library(name: "Torch", targets: ["Torch"]),
    .library(name: "TorchNN", targets: ["TorchNN"]),
    .library(name: "Detection", targets: ["Detection"]),
    .library(name: "Detectors", targets: ["Detectors"]),
    .library(name: "COCOEval", targets: ["COCOEval"]),
    .library(name: "COCO", targets: ["COCO"]),
    .library(name: "Training", targets: ["Training"]),
    .executable(name: "detr", targets: ["detr"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
    .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.0"),
    .package(url: "https://github.com/apple/swift-nio", from: "2.101.0"),
  ],
  targets: [
    // libctorch.so and its pkg-config file come from Scripts/setup.sh (Shim/ holds its C++ source).
    .systemLibrary(name: "CTorch", pkgConfig: "ctorch"),
    .target(name: "Torch", dependencies: ["CTorch"]),
    .target(name: "TorchNN", dependencies: ["Torch"]),
    .target(name: "Detection", dependencies: ["Torch", "TorchNN"]),
    .target(name: "Detectors", dependencies: ["Detection", "Torch", "TorchNN", "JSONMessages"]),
    // Decoding errors in JSON's words, for every module that reads JSON files (Foundation only).
    .target(name: "JSONMessages"),
    .target(name: "COCOEval", dependencies: ["JSONMessages"]),
    .target(name: "Training", dependencies: ["Torch", "TorchNN", "Detection", "Detectors", "COCO", "COCOEval"]),
    // JPEG and PNG through Debian's libjpeg-turbo and libpng (installed by Scripts/setup.sh).
    .target(name: "CImageCodecs", linkerSettings: [.linkedLibrary("jpeg"), .linkedLibrary("png16")]),
    // Drawing (boxes, labels, charts) through cairo, with a real font through fontconfig (installed by Scripts/setup.sh).
    .systemLibrary(name: "CCairo", pkgConfig: "cairo", providers: [.apt(["libcairo2-dev"])]),
    .target(name: "COCO", dependencies: ["CImageCodecs", "CCairo", "Torch", "JSONMessages"]),
    // `detr serve`: a detector behind HTTP, with dynamic batching (Hummingbird on SwiftNIO).
    .target(
      name: "DetectionServer",
      dependencies: [
        "COCO", "Detection", "Torch", "Training", .product(name: "Hummingbird", package: "hummingbird"),
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "Logging", package: "swift-log"),
      ]),
    .target(
      name: "DETRCommands",
      dependencies: [
        "Torch", "TorchNN", "COCO", "COCOEval", "Detection", "Detectors", "Training", "DetectionServer",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
        .product(name: "Logging", package: "swift-log"),
      ]),
    .executableTarget(
      name: "detr", dependencies: ["DETRCommands", "Torch", "Training", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
    .executableTarget(name: "torch-overhead-benchmark", dependencies: ["Torch"], path: "Benchmarks/TorchOverhead"),
    .executableTarget(name: "loader-throughput", dependencies: ["COCO"], path: "Benchmarks/LoaderThroughput"),
    .executableTarget(name: "nms-benchmark", dependencies: ["Detection"], path: "Benchmarks/NMS"),
    .executableTarget(name: "drawing-benchmark", dependencies: ["COCO"], path: "Benchmarks/Drawing"),
    .target(name: "TorchTestSupport", dependencies: ["Torch"], path: "Tests/TorchTestSupport"),
    .executableTarget(name: "torch-memory-probe", dependencies: ["Torch"], path: "Tests/TorchMemoryProbe"),
    .testTarget(name: "TorchTests", dependencies: ["Torch", "TorchTestSupport", "torch-memory-probe"], resources: [.copy("Goldens")]),
    .testTarget(name: "TorchNNTests", dependencies: ["TorchNN", "TorchTestSupport"], resources: [.copy("Goldens")]),
    .testTarget(name: "COCOTests", dependencies: ["COCO", "TorchTestSupport"], resources: [.copy("Fixtures")]),
    .testTarget(name: "DetectionTests", dependencies: ["Detection", "TorchTestSupport"], resources: [.copy("Goldens")]),
    .testTarget(name: "DetectorsTests", dependencies: ["Detectors", "TorchTestSupport"], resources: [.copy("Fixtures")]),
    .testTarget(name: "TrainingTests", dependencies: ["Training", "TorchTestSupport"]),
    .testTarget(name: "COCOEvalTests", dependencies: ["COCOEval"], resources: [.copy("Goldens")]),
    // Depends on the `detr` executable so that tests can run the real process (kill and resume).
    .testTarget(name: "DETRCommandsTests", dependencies: ["DETRCommands", "COCO", "Training", "TorchTestSupport", "detr"]),
  ],
  swiftLanguageModes: [.v6]
)
