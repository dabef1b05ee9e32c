import COCO
import COCOEval
import Detection
import Detectors
import Foundation
import Testing
import Torch
import TorchTestSupport
import Training

/// RetinaNet and DSA-RetinaNet through the user's own commands: `detr convert` on checkpoints the
/// reference libraries saved (torchvision 0.28, MMDetection 2.4, the DSA authors' fork; plain state
/// dict, legacy pickle, mmdet's meta + optimizer), then `detr predict` and `detr evaluate --weights` as
/// processes on images whose sides are not multiples of 32, with anchor scales, ratios and counts,
/// extra-level inputs and class counts our presets do not have. Every reference detection must be
/// found (class, score within 1e-4, box within 0.5 px) and no other; the AP must be pycocotools' on the
/// reference's detections. Goldens: Scripts/goldens/make_retinanet_end_to_end_goldens.py.
@Suite struct RetinaNetEndToEndTests {
  static let fixtures = ConvertCommandTests.fixtures.deletingLastPathComponent().appendingPathComponent("retinanet_end_to_end")

  struct Meta: Decodable {
    struct Resize: Decodable {
      var size: Int
      var max_size: Int
      var resizing: String
    }
    var layout: String
    var class_count: Int
    var anchor_scales: [Double]
    var anchor_ratios: [Double]
    var batch_norm_epsilon: Double?
    var octave_base_scale: Double?
    var add_extra_convs: String?
    var relu_before_extra_convs: Bool?
    var dsa: Bool?
    var resize: Resize
    var category_ids: [Int]
    var pycocotools_stats: [Double]
    var detections: [Int]
  }

  struct ReferenceDetection: Decodable {
    var image_id: Int
    var category_index: Int
    var score: Double
    var bbox: [Double]
  }

  /// The architecture each reference model was built with, as a swift-detr config (the script's models).
  static func config(for meta: Meta) -> (family: ModelKind, config: RetinaNetConfig) {
    var config: RetinaNetConfig
    if meta.layout == "torchvision" {
      config = .r50Torchvision
      config.backbone = BackboneConfig(blocksPerStage: [1, 1, 1, 1], stemChannels: 8, stageChannels: [8, 16, 32, 64], bottleneck: false)
      config.batchNormEpsilon = meta.batch_norm_epsilon!
      config.anchors = AnchorGenerator(convention: .torchvision, scales: meta.anchor_scales, ratios: meta.anchor_ratios)
    } else {
      config = meta.dsa == true ? .r50DSAConfidence : .r50
      // The authors' score fusion and IoU target, as their code computes them.
      if meta.dsa == true { (config.legacyScoreFusion, config.gradientThroughIoUTarget) = (true, true) }
      config.backbone = BackboneConfig(blocksPerStage: [2, 2, 2, 2], stemChannels: 8, stageChannels: [8, 16, 32, 64], bottleneck: false)
      config.anchors = AnchorGenerator(convention: .mmdet, scales: meta.anchor_scales, ratios: meta.anchor_ratios)
      config.anchors.sizes = config.anchors.strides.map { meta.octave_base_scale! * Double($0) }
      config.extraLevelsInput = RetinaNetConfig.ExtraLevelsInput(rawValue: meta.add_extra_convs!)!
      config.reluBeforeP7 = meta.relu_before_extra_convs!
    }
    (config.channels, config.classCount) = (32, meta.class_count)
    return (meta.dsa == true ? .dsaRetinaNet : .retinaNet, config)
  }

  static let cases = ["torchvision_default", "torchvision_six_anchors", "mmdet_plain", "dsa_confidence", "dsa_on_output"]

  @Test(arguments: cases)
  func convertPredictAndEvaluateGiveTheReferenceDetections(name: String) throws {
    let folder = Self.fixtures.appendingPathComponent(name)
    let meta = try JSONDecoder().decode(Meta.self, from: Data(contentsOf: folder.appendingPathComponent("meta.json")))
    let reference = try JSONDecoder().decode([ReferenceDetection].self, from: Data(contentsOf: folder.appendingPathComponent("reference.json")))
    #expect(meta.detections.reduce(0, +) == reference.count && reference.count > 100, "\(name): the golden has detections")
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("retinanet-e2e-\(UUID())")
    try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: root) }

    let (family, config) = Self.config(for: meta)
    let configFile = root.appendingPathComponent("config.json")
    try JSONEncoder().encode(config).write(to: configFile)
    let annotations = folder.appendingPathComponent("annotations.json")
    let weights = root.appendingPathComponent("weights")
    let converted = try ConvertCommandTests.detr([
      "convert", folder.appendingPathComponent("checkpoint.pth").path, "--family", family.rawValue, "--config", configFile.path,
      "--categories", annotations.path, "--output", weights.path,
    ])
    #expect(converted.status == 0 && converted.output.contains("\(meta.class_count) classes"), "\(name): \(converted.output)")
    if meta.layout == "torchvision" { #expect(converted.output.contains("note: frozen batch norm ε"), "\(converted.output)") }
    if meta.dsa == true { #expect(converted.output.contains("note: score fusion: the authors' code's"), "\(converted.output)") }

    let images = Self.fixtures.appendingPathComponent("images")
    let sizeArguments = ["--resize", meta.resize.resizing]
    let results = root.appendingPathComponent("results.json")
    let predicted = try ConvertCommandTests.detr(
      [
        "predict", "--weights", weights.path, images.appendingPathComponent("portrait.png").path,
        images.appendingPathComponent("landscape.png").path, "--threshold", "0", "--max-detections", "1000", "--size", "\(meta.resize.size)",
        "--max-size", "\(meta.resize.max_size)", "--json", results.path,
      ] + sizeArguments)
    #expect(predicted.status == 0, "\(name): \(predicted.output)")
    let ours = try JSONDecoder().decode([DetectedBox].self, from: Data(contentsOf: results))
    Self.expectSameDetections(ours, reference, categoryIds: meta.category_ids, name)

    // The same through evaluate, whose AP must be pycocotools' on the reference's detections.
    let scale = Double(meta.resize.size) / 800
    let statsFile = root.appendingPathComponent("stats.json")
    let evaluated = try ConvertCommandTests.detr(
      [
        "evaluate", "--annotations", annotations.path, "--weights", weights.path, "--images", images.path, "--image-scale", "\(scale)",
        "--json", statsFile.path,
      ] + sizeArguments)
    #expect(evaluated.status == 0, "\(name): \(evaluated.output)")
    let stats = try #require(
      (try JSONSerialization.jsonObject(with: Data(contentsOf: statsFile)) as? [String: Any])?["stats"] as? [Double], "\(name)")
    #expect(meta.pycocotools_stats[0] > 0.05, "\(name): the ground truth is findable")
    for (index, (mine, expected)) in zip(stats, meta.pycocotools_stats).enumerated() {
      #expect(abs(mine - expected) <= 1e-4, "\(name) stat \(index): \(mine) vs pycocotools \(expected)")
    }
  }

  @Test func convertNamesWhatDoesNotFitAndWritesNothing() throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("retinanet-e2e-errors-\(UUID())")
    try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: root) }
    let six = Self.fixtures.appendingPathComponent("torchvision_six_anchors")
    let meta = try JSONDecoder().decode(Meta.self, from: Data(contentsOf: six.appendingPathComponent("meta.json")))
    var (_, nineAnchors) = Self.config(for: meta)
    nineAnchors.anchors.scales = [1, 1.25, 1.5]
    let nineFile = root.appendingPathComponent("nine.json")
    try JSONEncoder().encode(nineAnchors).write(to: nineFile)
    let (_, plain) = Self.config(for: try JSONDecoder().decode(Meta.self, from: Data(contentsOf: Self.fixtures.appendingPathComponent("mmdet_plain/meta.json"))))
    let plainFile = root.appendingPathComponent("plain.json")
    try JSONEncoder().encode(plain).write(to: plainFile)
    let wrongNames = root.appendingPathComponent("wrong-names.json")
    try Data(#"{"categories": [{"id": 1, "name": "sheep"}, {"id": 2, "name": "kite"}, {"id": 3, "name": "car"}]}"#.utf8).write(to: wrongNames)
    let notCategories = root.appendingPathComponent("not-categories.json")
    try Data(#"{"images": []}"#.utf8).write(to: notCategories)
    let tooManyIds = root.appendingPathComponent("ids.json")
    try Data(#"[{"id": 0, "name": "a"}, {"id": 9, "name": "b"}]"#.utf8).write(to: tooManyIds)
    let output = root.appendingPathComponent("out").path
    let sixPth = six.appendingPathComponent("checkpoint.pth").path
    let plainPth = Self.fixtures.appendingPathComponent("mmdet_plain/checkpoint.pth").path
    let sixConfig = try Self.configFile(meta, in: root).path
    let cases: [([String], [String])] = [
      (["convert", sixPth, "--family", "retinanet", "--preset", "r50-torchvision", "--output", output], ["6 anchors per location", "--config"]),
      (["convert", sixPth, "--family", "retinanet", "--config", nineFile.path, "--output", output], ["3 anchor scales × 3 ratios = 9", "has 6"]),
      (["convert", sixPth, "--family", "retinanet", "--config", nineFile.path.replacingOccurrences(of: "nine", with: "none"), "--output", output], ["none.json"]),
      (["convert", plainPth, "--family", "retinanet", "--config", plainFile.path, "--categories", wrongNames.path, "--output", output], ["--categories", "'boat'"]),
      (["convert", plainPth, "--family", "retinanet", "--config", plainFile.path, "--categories", notCategories.path, "--output", output], ["--categories", "holds no categories"]),
      (["convert", sixPth, "--family", "retinanet", "--config", sixConfig, "--categories", tooManyIds.path, "--output", output], ["category id 9", "0–6"]),
    ]
    for (arguments, parts) in cases {
      let result = try ConvertCommandTests.detr(arguments)
      #expect(result.status != 0, "\(arguments)")
      #expect(parts.allSatisfy { result.output.contains($0) }, "\(arguments): \(result.output)")
      #expect(!result.output.contains("Fatal error") && result.output.split(separator: "\n").count <= 4, "\(arguments): \(result.output)")
    }
    #expect(!FileManager.default.fileExists(atPath: output))
    // Without --categories, an MMDetection checkpoint's class names are kept, and the ids said to be indices.
    let named = try ConvertCommandTests.detr(["convert", plainPth, "--family", "retinanet", "--config", plainFile.path, "--output", output])
    #expect(named.status == 0 && named.output.contains("note: category ids are the class indices 0–2"), "\(named.output)")
    #expect(try DetectorCheckpoint.load(URL(fileURLWithPath: output)).categories.entries.map(\.name) == ["sheep", "kite", "boat"])
  }

  /// A run folder's (or checkpoint's) config.json as --config gives the architecture and its categories.
  @Test func aRunFoldersConfigGivesItsCategories() throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("retinanet-e2e-run-\(UUID())")
    try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: root) }
    let case_ = Self.fixtures.appendingPathComponent("torchvision_six_anchors")
    let meta = try JSONDecoder().decode(Meta.self, from: Data(contentsOf: case_.appendingPathComponent("meta.json")))
    let categories = (0..<7).map { ["id": 100 + $0, "name": "part \($0)"] as [String: Any] }
    let runConfig: [String: Any] = [
      "format": "swift-detr", "version": 1, "model": "retinanet", "categories": categories,
      "config": try JSONSerialization.jsonObject(with: JSONEncoder().encode(Self.config(for: meta).config)),
    ]
    let file = root.appendingPathComponent("config.json")
    try JSONSerialization.data(withJSONObject: runConfig).write(to: file)
    let output = root.appendingPathComponent("out")
    let result = try ConvertCommandTests.detr([
      "convert", case_.appendingPathComponent("checkpoint.pth").path, "--family", "retinanet", "--config", file.path, "--output", output.path,
    ])
    #expect(result.status == 0 && !result.output.contains("category ids"), "\(result.output)")
    let loaded = try DetectorCheckpoint.load(output)
    #expect(loaded.categories.entries.map(\.id) == Array(100..<107) && loaded.categories.name(ofIndex: 6) == "part 6")
  }

  static func configFile(_ meta: Meta, in root: URL) throws -> URL {
    let file = root.appendingPathComponent("config-\(UUID()).json")
    try JSONEncoder().encode(config(for: meta).config).write(to: file)
    return file
  }

  /// Configs written before `add_extra_convs` existed name P6's input with the boolean `p6_from_p5`.
  @Test func theFormerP6FlagStillDecodes() throws {
    for (legacy, expected) in [(true, RetinaNetConfig.ExtraLevelsInput.pyramid), (false, .backbone)] {
      var object = try JSONSerialization.jsonObject(with: JSONEncoder().encode(RetinaNetConfig.r50Torchvision)) as! [String: Any]
      object["add_extra_convs"] = nil
      object["p6_from_p5"] = legacy
      let decoded = try JSONDecoder().decode(RetinaNetConfig.self, from: JSONSerialization.data(withJSONObject: object))
      #expect(decoded.extraLevelsInput == expected)
    }
    #expect(try JSONDecoder().decode(RetinaNetConfig.self, from: JSONEncoder().encode(RetinaNetConfig.r50Torchvision)) == .r50Torchvision)
  }

  /// Each reference detection matched one to one by one of ours of its image and category, score
  /// within 1e-4 and every box side within 0.5 px; none of ours left over.
  static func expectSameDetections(_ ours: [DetectedBox], _ reference: [ReferenceDetection], categoryIds: [Int], _ name: String) {
    #expect(ours.count == reference.count, "\(name): \(ours.count) detections, the reference \(reference.count)")
    var unmatched = ours
    var missing: [String] = []
    for wanted in reference {
      let id = categoryIds[wanted.category_index]
      let match = unmatched.firstIndex { mine in
        mine.imageId == wanted.image_id && mine.categoryId == id && abs(mine.score - wanted.score) <= 1e-4
          && zip(mine.box, wanted.bbox).allSatisfy { abs($0 - $1) <= 0.5 }
      }
      if let match { unmatched.remove(at: match) } else { missing.append("image \(wanted.image_id) class \(id) \(wanted.score) \(wanted.bbox)") }
    }
    #expect(missing.isEmpty, "\(name): \(missing.count) reference detections not found, e.g. \(missing.prefix(3))")
    #expect(unmatched.isEmpty, "\(name): \(unmatched.count) extra detections, e.g. \(unmatched.prefix(3))")
  }

  /// Padding is the detector's: the dense detectors round a batch up to a multiple of 32, the DETR
  /// family pads only to the largest image (as their references do: a mask, not a grid, tells the
  /// padding). The official DETR-family checkpoints detect as their official models on two images of
  /// 96×128 and 80×112 through the batch `predict` and `evaluate` build.
  @Test(arguments: [("detr", ModelKind.detr), ("conditional_detr", .conditionalDETR), ("deformable_detr", .deformableDETR)])
  func theDETRFamilyPadsToTheLargestImageOnly(fixture: String, family: ModelKind) throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("detr-padding-\(UUID())")
    try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: root) }
    let configFile = root.appendingPathComponent("config.json")
    try ConvertCommandTests.configJSON(family).write(to: configFile)
    let output = root.appendingPathComponent("converted")
    let source = ConvertCommandTests.fixtures.appendingPathComponent("\(fixture)/checkpoint.pth")
    let result = try ConvertCommandTests.detr(["convert", source.path, "--family", family.rawValue, "--config", configFile.path, "--output", output.path])
    #expect(result.status == 0, "\(result.output)")
    let loaded = try DetectorCheckpoint.load(output)
    #expect(loaded.detector.inputSizeDivisor == 1)
    let golden = try Goldens(ConvertCommandTests.fixtures.appendingPathComponent("\(fixture)/golden.safetensors"))
    let sizes = [(height: 96, width: 128), (height: 80, width: 112)]
    let samples = sizes.enumerated().map { index, size in
      let pixels = golden["images"][index, 0..., 0..<size.height, 0..<size.width].contiguous().asArray(Float.self)
      return TransformedSample(
        pixels: pixels, width: size.width, height: size.height,
        target: DetectionTarget(imageId: index, labels: [], boxes: [], originalSize: size, size: size))
    }
    let batch = DetectionBatch(samples: samples, padToMultipleOf: loaded.detector.inputSizeDivisor)
    #expect(batch.images.shape == [2, 3, 96, 128])
    let detections = withInferenceMode { loaded.detector.detect(batch.detectorBatch(for: loaded.detector)) }
    for (index, image) in detections.enumerated() {
      expectClose(Tensor(image.scores), golden["detections.\(index).scores"], relative: 0, absolute: 1e-4, "\(fixture) scores \(index)")
      expectClose(
        Tensor(image.boxes.flatMap { $0.map(Float.init) }).view(-1, 4), golden["detections.\(index).boxes"], relative: 1e-5, absolute: 1e-4,
        "\(fixture) boxes \(index)")
    }
    let retinaNet = try RetinaNetModel(config: .small)
    #expect(retinaNet.inputSizeDivisor == 32)
    #expect(DetectionBatch(samples: samples, padToMultipleOf: retinaNet.inputSizeDivisor).images.shape == [2, 3, 96, 128])
    #expect(DetectionBatch(samples: [samples[1]], padToMultipleOf: retinaNet.inputSizeDivisor).images.shape == [1, 3, 96, 128])
  }
}
