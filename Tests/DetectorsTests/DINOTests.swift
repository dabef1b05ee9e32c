import Detection
import Foundation
import Testing
import Torch
import TorchNN
import TorchTestSupport

@testable import Detectors

/// DINO equals the official detrex code (fixtures from Scripts/goldens/make_detrex_goldens.py: a
/// small DINO of detrex's own config with perturbed weights, run on the CPU).
@Suite struct DINOTests {
  static let folder = DETRTests.fixture("dino_detrex")

  /// The fixture's architecture (see the golden script).
  static var config: DINOConfig {
    var config = DINOConfig()
    config.backbone = BackboneConfig(blocksPerStage: [1, 1, 1, 1], stemChannels: 16, stageChannels: [32, 64, 128, 64], bottleneck: true)
    config.transformer = TransformerSettings(encoderLayers: 1, decoderLayers: 2, feedForwardDim: 32, dropout: 0, queries: 30)
    config.classCount = 5
    config.denoisingQueries = 10
    config.detectionsPerImage = 30
    return config
  }

  /// The official weights (int8 · 1/64 in the fixtures), in the official keys.
  static func detrexState(_ folder: URL = folder) throws -> [String: Tensor] {
    try SafeTensors.load(contentsOf: folder.appendingPathComponent("model.safetensors")).tensors.mapValues { $0.to(.float32) / 64 }
  }

  static func model() throws -> DINOModel {
    let model = withSeededGenerator(0) { DINOModel(config: config) }
    try model.load(stateDict: DINOModel.stateDict(fromDetrex: detrexState(), source: "fixture"))
    return model
  }

  /// detrex's normalization of `pixels [batch, 3, H, W]` uint8, zero in the padding.
  static func normalized(_ pixels: Tensor, mask: Tensor) -> Tensor {
    let mean = Tensor([123.675, 116.280, 103.530] as [Float]).view(1, 3, 1, 1)
    let std = Tensor([58.395, 57.120, 57.375] as [Float]).view(1, 3, 1, 1)
    return ((pixels.to(.float32) - mean) / std).filling(where: mask.unsqueezed(dim: 1), with: 0)
  }

  static func batch(_ golden: Goldens, targets: Bool) -> DetectorBatch {
    let mask = golden["padding_mask"]
    let images = normalized(golden["pixels"], mask: mask)
    expectClose(
      images[.all, .all, .stride(from: 0, by: 40), .stride(from: 0, by: 40)], golden["images"], relative: 0, absolute: 1e-5, "images")
    let valid = mask.logicalNot()
    let sizes = (0..<images.size(0)).map { index in
      (height: valid[index, .all, 0].sum().item(Int.self), width: valid[index, 0].sum().item(Int.self))
    }
    let matchTargets =
      targets
      ? (0..<images.size(0)).map { MatchTarget(labels: golden["targets.\($0).labels"], boxes: golden["targets.\($0).boxes"]) } : []
    return DetectorBatch(images: images, paddingMask: mask, imageSizes: sizes, targets: matchTargets)
  }

  @Test func evaluationOutputsEqualDetrex() throws {
    let model = try Self.model()
    model.eval()
    let golden = try Goldens(Self.folder.appendingPathComponent("eval.safetensors"))
    let batch = Self.batch(golden, targets: false)
    let output = withInferenceMode { model(batch) }
    expectClose(output.layers[1].logits, golden["logits"], relative: 0, absolute: 1e-4, "logits")
    expectClose(output.layers[1].boxes, golden["boxes"], relative: 0, absolute: 1e-4, "boxes")
    expectClose(output.layers[0].logits, golden["aux_logits"], relative: 0, absolute: 1e-4, "auxiliary logits")
    expectClose(output.layers[0].boxes, golden["aux_boxes"], relative: 0, absolute: 1e-4, "auxiliary boxes")
    expectClose(output.encoder.logits, golden["encoder_logits"], relative: 0, absolute: 1e-4, "proposal logits")
    expectClose(output.encoder.boxes, golden["encoder_boxes"], relative: 0, absolute: 1e-4, "proposal boxes")
    #expect(output.denoising.isEmpty && output.denoisingGroups == nil)
    let detections = withInferenceMode { model.detect(batch) }
    for (index, image) in detections.enumerated() {
      expectClose(Tensor(image.scores), golden["detections.\(index).scores"], relative: 0, absolute: 1e-4, "scores")
      #expect(image.labels == golden["detections.\(index).labels"].asArray(Int.self))
      expectClose(
        Tensor(image.boxes.flatMap { $0.map(Float.init) }, shape: [image.boxes.count, 4]), golden["detections.\(index).boxes"],
        relative: 0, absolute: 1e-2, "boxes in pixels")
    }
  }

  @Test func everyLossTermEqualsDetrexWithItsDenoisingNoise() throws {
    let model = try Self.model()
    model.train()
    let golden = try Goldens(Self.folder.appendingPathComponent("train.safetensors"))
    let batch = Self.batch(golden, targets: true)
    let noised = NoisedTargets(labels: golden["noised_labels"], boxes: golden["noised_boxes"])
    model.denoisingNoiseOverride = { _, _ in noised }
    let output = model(batch)
    let groups = try #require(output.denoisingGroups)
    #expect(groups == DenoisingGroups(groupCount: 3, maxTargets: 3, targetCounts: [3, 2]))
    #expect(groups.attentionMask(matchingQueries: 30).asArray(Bool.self) == golden["attention_mask"].asArray(Bool.self))
    expectClose(output.layers[1].logits, golden["logits"], relative: 0, absolute: 1e-4, "logits")
    expectClose(output.layers[1].boxes, golden["boxes"], relative: 0, absolute: 1e-4, "boxes")
    expectClose(output.denoising[1].logits, golden["denoising_logits"], relative: 0, absolute: 1e-4, "denoising logits")
    expectClose(output.denoising[1].boxes, golden["denoising_boxes"], relative: 0, absolute: 1e-4, "denoising boxes")
    let losses = try model.losses(for: output, targets: batch.targets)
    #expect(losses.terms.count == 15)
    for term in losses.terms {
      expectClose(term.value, golden["loss.\(term.name)"], relative: 1e-4, absolute: 1e-6, term.name)
    }
    losses.total.backward()
    Self.expectGradients(of: model, golden)
  }

  /// The gradients of the weighted total equal the reference's (its norm, and a sample of its
  /// first entries) for every parameter the golden file probes.
  static func expectGradients(of model: Module, _ golden: Goldens) {
    let parameters = Dictionary(uniqueKeysWithValues: model.namedParameters().map { ($0.name, $0.tensor) })
    let probes = golden.contents.tensors.keys.filter { $0.hasPrefix("grad.") }.sorted()
    #expect(probes.count >= 16)
    for probe in probes {
      let name = String(probe.dropFirst("grad.".count))
      guard let gradient = parameters[name]?.grad else {
        Issue.record("\(name) has no gradient")
        continue
      }
      let sample = golden[probe]
      let scale = sample.abs().max().item(Double.self)
      // The floor of 1e-7 is for Focus-DETR's top-down factors, whose gradient (~1e-6) is a sum over
      // every token that mostly cancels, so that the order of float32 sums shows at 1%.
      let floor = 1e-7
      expectClose(
        gradient.flattened()[0..<sample.size(0)], sample, relative: 2e-3, absolute: Swift.max(1e-4 * scale, floor), "gradient of \(name)")
      expectClose(gradient.norm(), golden["grad_norm.\(name)"], relative: 1e-3, absolute: floor, "gradient norm of \(name)")
    }
  }

  @Test func denoisingNoiseFollowsTheReferenceRecipe() {
    let denoising = ContrastiveDenoising(queryCount: 10, labelNoiseRatio: 0.5, boxNoiseScale: 1, classCount: 5)
    let targets = [
      MatchTarget(labels: Tensor([1, 2] as [Int]), boxes: Tensor([0.5, 0.5, 0.2, 0.4, 0.3, 0.6, 0.1, 0.1] as [Float], shape: [2, 4])),
      MatchTarget(labels: Tensor([] as [Int]), boxes: Tensor.zeros([0, 4])),
    ]
    let groups = denoising.groups(for: targets)!
    #expect(groups.groupCount == 5 && groups.queryCount == 20)
    let noised = withSeededGenerator(3) { denoising.noised(targets, groups: groups) }
    #expect(noised.labels.shape == [20] && noised.boxes.shape == [20, 4])
    // Corners of positives move by less than half the size, of negatives by half to once the size.
    let original = Boxes.centerToCorners(Tensor.cat([targets[0].boxes], dim: 0).repeated([10, 1]))
    let moved = (Boxes.centerToCorners(noised.boxes) - original).abs()
    let half = Tensor.cat([targets[0].boxes[.all, 2..<4], targets[0].boxes[.all, 2..<4]], dim: 1).repeated([10, 1]) / 2
    let ratio = (moved / half).view(10, 2, 4)
    #expect(ratio[.stride(from: 0, by: 2)].max().item(Float.self) < 1.0001)
    // Clamping to the image can shorten a negative's move, so only the unclamped ones are checked.
    #expect(denoising.groups(for: [targets[1]]) == nil)
    let same = withSeededGenerator(3) { denoising.noised(targets, groups: groups) }
    #expect(same.labels.asArray(Int.self) == noised.labels.asArray(Int.self), "the seed fixes the noise")
  }

  @Test func imagesWithFewerTokensThanQueriesUseTheFirstQueries() throws {
    let model = try Self.model()
    model.eval()
    // 32x32: 16 + 4 + 1 + 1 tokens for 30 queries (the reference's top-k fails here).
    let batch = DetectorBatch(unpaddedImages: Tensor.randn([1, 3, 32, 32]))
    let output = withInferenceMode { model(batch) }
    #expect(output.layers[1].logits.shape == [1, 22, 5])
    #expect(withInferenceMode { model.detect(batch) }[0].scores.count <= 30)
  }

  @Test func detrexCheckpointAliasesMustAgree() throws {
    var state = try Self.detrexState()
    state["transformer.decoder.class_embed.0.weight"] = state["class_embed.0.weight"]!
    #expect(try DINOModel.stateDict(fromDetrex: state, source: "x")["transformer.decoder.class_embed.0.weight"] == nil)
    state["transformer.decoder.class_embed.0.weight"] = state["class_embed.1.weight"]! + 1
    #expect(throws: CheckpointError.self) { try DINOModel.stateDict(fromDetrex: state, source: "x") }
  }
}
