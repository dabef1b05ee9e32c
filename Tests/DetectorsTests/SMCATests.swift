import Detection
import Foundation
import Testing
import Torch
import TorchNN
import TorchTestSupport

@testable import Detectors

/// SMCA-DETR (single scale) equals the official code, for all four scale types (fixtures from
/// Scripts/goldens/make_smca_goldens.py: a small model built from the official modules with
/// perturbed weights, run on the CPU).
@Suite struct SMCATests {
  static let folder = DETRTests.fixture("smca_official")

  /// The fixture's architecture (see the golden script).
  static func config(_ scale: SpatialScale) -> SMCAConfig {
    var config = SMCAConfig()
    config.backbone = BackboneConfig(blocksPerStage: [1, 1, 1, 1], stemChannels: 16, stageChannels: [16, 32, 64, 128], bottleneck: false)
    config.transformer = TransformerSettings(encoderLayers: 1, decoderLayers: 2, feedForwardDim: 32, dropout: 0, queries: 20)
    config.classCount = 5
    config.scale = scale
    return config
  }

  /// The official weights of a scale type (int8 · 1/64 in the fixtures), in the official keys.
  static func officialState(_ scale: SpatialScale) throws -> [String: Tensor] {
    let load = { (file: String) in
      try SafeTensors.load(contentsOf: folder.appendingPathComponent(file)).tensors.mapValues { $0.to(.float32) / 64 }
    }
    var state = try load("model.safetensors")
    let ownScales = try load("scales.safetensors").filter { $0.key.hasPrefix("\(scale.rawValue).") }
    state = state.filter { !$0.key.contains(".point3.") || scale == .perAxis }
    for (key, value) in ownScales { state[String(key.dropFirst(scale.rawValue.count + 1))] = value }
    return state
  }

  static func model(_ scale: SpatialScale) throws -> SMCAModel {
    let model = try withSeededGenerator(0) { try SMCAModel(config: config(scale)) }
    try model.load(stateDict: officialState(scale))
    return model
  }

  static func batch(_ golden: Goldens) throws -> DetectorBatch {
    let meta = try #require(
      try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("meta.json"))) as? [String: Any])
    let sizes = try #require(meta["image_sizes"] as? [[Int]]).map { (height: $0[0], width: $0[1]) }
    let outputSizes = try #require(meta["output_sizes"] as? [[Int]]).map { (height: $0[0], width: $0[1]) }
    let targets = try #require(meta["targets"] as? [[String: Any]]).map { target in
      let labels = target["labels"] as! [Int]
      let boxes = (target["boxes"] as! [[Double]]).flatMap { $0.map(Float.init) }
      return MatchTarget(labels: Tensor(labels, shape: [labels.count]), boxes: Tensor(boxes, shape: [labels.count, 4]))
    }
    let images = golden["images"].to(.float32)
    let mask = Tensor.ones([images.size(0), images.size(2), images.size(3)], dtype: .bool)
    for (index, size) in sizes.enumerated() { mask[index, 0..<size.height, 0..<size.width] = Tensor.zeros([size.height, size.width], dtype: .bool) }
    return DetectorBatch(images: images, paddingMask: mask, imageSizes: sizes, outputSizes: outputSizes, targets: targets)
  }

  @Test(arguments: SpatialScale.allCases)
  func everyLayersPredictionsEqualTheOfficialCode(scale: SpatialScale) throws {
    let model = try Self.model(scale)
    model.eval()
    let golden = try Goldens(Self.folder.appendingPathComponent("golden.safetensors"))
    let batch = try Self.batch(golden)
    let output = withInferenceMode { model.predictions(for: batch) }
    let layers = output.auxiliary + [output.final]
    for (index, layer) in layers.enumerated() {
      expectClose(layer.logits, golden["\(scale.rawValue).logits"][index], relative: 0, absolute: 1e-4, "layer \(index) logits")
      expectClose(layer.boxes, golden["\(scale.rawValue).boxes"][index], relative: 0, absolute: 1e-4, "layer \(index) boxes")
    }
    let matches = try model.makeCriterion().matcher.match(logits: output.final.logits, boxes: output.final.boxes, targets: batch.targets)
    for (image, match) in matches.enumerated() {
      let official = zip(
        golden["\(scale.rawValue).indices.\(image).queries"].asArray(Int.self), golden["\(scale.rawValue).indices.\(image).targets"].asArray(Int.self)
      ).sorted { $0.0 < $1.0 }
      #expect(match.queries == official.map(\.0) && match.targets == official.map(\.1), "matches of image \(image)")
    }
  }

  /// The official post-processing keeps the best (query, class) pairs over all 6 outputs, as many as
  /// queries; ours leaves the never-trained extra output out, so each official detection of a real
  /// class is ours, in order.
  @Test func detectionsEqualTheOfficialOnesOfRealClasses() throws {
    let model = try Self.model(.perAxis)
    model.eval()
    let golden = try Goldens(Self.folder.appendingPathComponent("golden.safetensors"))
    let detections = withInferenceMode { model.detect(try! Self.batch(golden)) }
    for (index, image) in detections.enumerated() {
      let labels = golden["type3.detections.\(index).labels"].asArray(Int.self)
      let real = labels.indices.filter { labels[$0] < 5 }
      #expect(real.count > 10, "the fixture's official detections are mostly of real classes")
      #expect(image.scores.count == 20, "as many detections as queries")
      let count = Swift.min(real.count, image.scores.count)
      let rows = Tensor(real.prefix(count).map { $0 }, shape: [count])
      #expect(Array(image.labels.prefix(count)) == real.prefix(count).map { labels[$0] })
      expectClose(
        Tensor(Array(image.scores.prefix(count))), golden["type3.detections.\(index).scores"].indexSelect(dim: 0, index: rows), relative: 0,
        absolute: 1e-4, "scores")
      expectClose(
        Tensor(image.boxes.prefix(count).flatMap { $0.map(Float.init) }, shape: [count, 4]),
        golden["type3.detections.\(index).boxes"].indexSelect(dim: 0, index: rows), relative: 0, absolute: 2e-3, "boxes in pixels")
    }
  }

  @Test(arguments: SpatialScale.allCases)
  func everyLossTermEqualsTheOfficialCode(scale: SpatialScale) throws {
    let model = try Self.model(scale)
    model.train()
    let golden = try Goldens(Self.folder.appendingPathComponent("golden.safetensors"))
    let losses = try model.losses(for: Self.batch(golden))
    #expect(losses.terms.count == 6)
    for term in losses.terms {
      expectClose(term.value, golden["\(scale.rawValue).loss.\(term.name)"], relative: 1e-4, absolute: 1e-6, term.name)
    }
    guard scale == .perAxis else { return }
    losses.total.backward()
    let parameters = Dictionary(uniqueKeysWithValues: model.namedParameters().map { ($0.name, $0.tensor) })
    let probes = golden.contents.tensors.keys.filter { $0.hasPrefix("gradient.") && $0.hasSuffix(".head") }.sorted()
    #expect(probes.count == 14)
    for probe in probes {
      let name = String(probe.dropFirst("gradient.".count).dropLast(".head".count))
      let gradient = try #require(parameters[name]?.grad, "\(name) has a gradient")
      let sample = golden[probe]
      let scale = sample.abs().max().item(Double.self)
      expectClose(gradient.flattened()[0..<sample.size(0)], sample, relative: 2e-3, absolute: 1e-4 * scale, "gradient of \(name)")
      expectClose(gradient.norm(), golden["gradient.\(name).norm"], relative: 1e-3, absolute: 0, "gradient norm of \(name)")
    }
  }
}
