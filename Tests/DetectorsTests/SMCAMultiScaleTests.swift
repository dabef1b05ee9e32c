import Detection
import Foundation
import Testing
import Torch
import TorchNN
import TorchTestSupport

@testable import Detectors

/// The released multi-scale SMCA-DETR equals the official code (fixtures from
/// `Scripts/goldens/make_smca_goldens.py --variant multi-scale`: a small model built from the official
/// modules with perturbed weights, each image run alone, since the official scale-selection reads
/// image 0's weights for the whole batch).
@Suite struct SMCAMultiScaleTests {
  static let folder = DETRTests.fixture("smca_multi_scale_official")

  static var config: SMCAConfig {
    var config = SMCAConfig()
    config.encoder = .depthwiseMultiScale
    config.backbone = BackboneConfig(blocksPerStage: [1, 1, 1, 1], stemChannels: 16, stageChannels: [16, 32, 64, 128], bottleneck: false)
    config.transformer = TransformerSettings(encoderLayers: 1, decoderLayers: 2, feedForwardDim: 32, dropout: 0, queries: 100)
    config.classCount = 5
    return config
  }

  static func model() throws -> SMCAMultiScaleModel {
    let model = try withSeededGenerator(0) { try SMCAMultiScaleModel(config: config) }
    let state = try SafeTensors.load(contentsOf: folder.appendingPathComponent("model.safetensors")).tensors.mapValues { $0.to(.float32) / 64 }
    try model.load(stateDict: state)
    return model
  }

  static func meta() throws -> [String: Any] {
    try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("meta.json"))) as? [String: Any])
  }

  /// Image `index` alone, with its target and output size.
  static func batch(_ golden: Goldens, image index: Int) throws -> DetectorBatch {
    let meta = try meta()
    let outputSize = try #require(meta["output_sizes"] as? [[Int]])[index]
    let target = try #require(meta["targets"] as? [[String: Any]])[index]
    let labels = target["labels"] as! [Int]
    let boxes = (target["boxes"] as! [[Double]]).flatMap { $0.map(Float.init) }
    let image = golden["multi.image\(index).image"].to(.float32).unsqueezed(dim: 0)
    return DetectorBatch(
      images: image, paddingMask: Tensor.zeros([1, image.size(2), image.size(3)], dtype: .bool), imageSizes: [(image.size(2), image.size(3))],
      outputSizes: [(outputSize[0], outputSize[1])],
      targets: [MatchTarget(labels: Tensor(labels, shape: [labels.count]), boxes: Tensor(boxes, shape: [labels.count, 4]))])
  }

  @Test(arguments: [0, 1])
  func everyLayersPredictionsAndLossesEqualTheOfficialCode(image: Int) throws {
    let model = try Self.model()
    model.eval()
    let golden = try Goldens(Self.folder.appendingPathComponent("golden.safetensors"))
    let batch = try Self.batch(golden, image: image)
    let prefix = "multi.image\(image)"
    let output = withInferenceMode { model.predictions(for: batch) }
    for (index, layer) in (output.auxiliary + [output.final]).enumerated() {
      expectClose(layer.logits[0], golden["\(prefix).logits"][index], relative: 0, absolute: 1e-4, "layer \(index) logits")
      expectClose(layer.boxes[0], golden["\(prefix).boxes"][index], relative: 0, absolute: 1e-4, "layer \(index) boxes")
    }
    let match = try model.makeCriterion().matcher.match(logits: output.final.logits, boxes: output.final.boxes, targets: batch.targets)[0]
    let official = zip(golden["\(prefix).indices.queries"].asArray(Int.self), golden["\(prefix).indices.targets"].asArray(Int.self))
      .sorted { $0.0 < $1.0 }
    #expect(match.queries == official.map(\.0) && match.targets == official.map(\.1))

    // Detections: the official ones of real classes (it keeps 500 pairs, the extra output among them), in order.
    let detections = withInferenceMode { model.detect(batch) }[0]
    let labels = golden["\(prefix).detections.labels"].asArray(Int.self)
    let real = labels.indices.filter { labels[$0] < 5 }.prefix(detections.scores.count)
    #expect(detections.scores.count == 100 && real.count == 100)
    let rows = Tensor(Array(real), shape: [real.count])
    #expect(detections.labels == real.map { labels[$0] })
    expectClose(
      Tensor(detections.scores), golden["\(prefix).detections.scores"].indexSelect(dim: 0, index: rows), relative: 0, absolute: 1e-4, "scores")
    expectClose(
      Tensor(detections.boxes.flatMap { $0.map(Float.init) }, shape: [real.count, 4]),
      golden["\(prefix).detections.boxes"].indexSelect(dim: 0, index: rows), relative: 0, absolute: 2e-3, "boxes in pixels")

    model.train()
    let losses = try model.losses(for: batch)
    #expect(losses.terms.count == 6)
    for term in losses.terms {
      expectClose(term.value, golden["\(prefix).loss.\(term.name)"], relative: 1e-4, absolute: 1e-6, term.name)
    }
    guard image == 0 else { return }
    losses.total.backward()
    let parameters = Dictionary(uniqueKeysWithValues: model.namedParameters().map { ($0.name, $0.tensor) })
    let probes = try #require(Self.meta()["gradient_probes"] as? [String])
    #expect(probes.count == 22)
    for name in probes {
      let gradient = try #require(parameters[name]?.grad, "\(name) has a gradient")
      let sample = golden["gradient.\(name).head"]
      let scale = sample.abs().max().item(Double.self)
      expectClose(gradient.flattened()[0..<sample.size(0)], sample, relative: 2e-3, absolute: 1e-4 * scale, "gradient of \(name)")
      expectClose(gradient.norm(), golden["gradient.\(name).norm"], relative: 1e-3, absolute: 0, "gradient norm of \(name)")
    }
  }

  /// Scale selection is per image: an image in a batch gives what it gives alone (same size, no padding).
  @Test func eachImageOfABatchSelectsItsOwnScales() throws {
    let model = try Self.model()
    model.eval()
    let images = withSeededGenerator(5) { Tensor.randn([2, 3, 128, 192]) }
    let together = withInferenceMode { model.predictions(for: DetectorBatch(unpaddedImages: images)) }
    for index in 0..<2 {
      let alone = withInferenceMode { model.predictions(for: DetectorBatch(unpaddedImages: images[index..<(index + 1)])) }
      expectClose(together.final.logits[index], alone.final.logits[0], relative: 0, absolute: 1e-5, "image \(index) logits")
      expectClose(together.final.boxes[index], alone.final.boxes[0], relative: 0, absolute: 1e-5, "image \(index) boxes")
    }
  }
}
