import Detection
import Foundation
import Testing
import Torch
import TorchNN
import TorchTestSupport

@testable import Detectors

/// SD-DETR, whose code was never released: each piece equals an independent PyTorch transcription
/// of the spec (`Scripts/goldens/make_sd_detr_goldens.py`), and with every switch off it is
/// Conditional DETR.
@Suite struct SDDETRTests {
  static let folder = DETRTests.fixture("sd_detr_transcription")

  /// The transcription's decoder side: 32 wide, 4 heads, 2 layers, 10 queries, 5 classes, M = 3.
  static func transcriptionConfig(_ variant: String) -> SDDETRConfig {
    var config = SDDETRConfig()
    config.backbone = BackboneConfig(blocksPerStage: [1, 1, 1, 1], stemChannels: 8, stageChannels: [8, 16, 32, 64], bottleneck: false)
    config.transformer = TransformerSettings(
      hiddenDim: 32, heads: 4, encoderLayers: 1, decoderLayers: 2, feedForwardDim: 64, dropout: 0, queries: 10)
    config.classCount = 5
    config.pointsPerBranch = 3
    config.miniDetectorConvLayers = 1
    switch variant {
    case "token": (config.selfAttentionConcat, config.shareKeyValue, config.boxReference) = (.token, true, .center)
    case "two": (config.taskAwareQueries, config.twoFullDecoders, config.boxReference) = (false, true, .center)
    default: break
    }
    return config
  }

  @Test(arguments: ["channel", "token", "two"])
  func theDecoderSideEqualsTheTranscription(variant: String) throws {
    let model = try withSeededGenerator(0) { try SDDETRModel(config: Self.transcriptionConfig(variant)) }
    let weights = try SafeTensors.load(contentsOf: Self.folder.appendingPathComponent("\(variant).safetensors")).tensors
    let report = try model.load(stateDict: weights, strict: false)
    #expect(report.unexpected.isEmpty && report.misshaped.isEmpty, "\(report.summary)")
    let encoderSide = ["backbone.", "input_proj.", "transformer.encoder."]
    #expect(report.missing.allSatisfy { key in encoderSide.contains { key.hasPrefix($0) } }, "\(report.missing)")
    model.eval()
    let golden = try Goldens(Self.folder.appendingPathComponent("golden.safetensors"))
    let mask = golden["mask"].to(.bool)
    let output = withInferenceMode {
      model.decode(memory: golden["memory"], memoryPosition: golden["memory_position"], memoryMask: mask.flattened(from: 1), size: (6, 7))
    }
    let layers = output.predictions.auxiliary + [output.predictions.final]
    for (index, layer) in layers.enumerated() {
      expectClose(layer.logits, golden["\(variant).logits_\(index)"], relative: 0, absolute: 1e-5, "\(variant) layer \(index) logits")
      expectClose(layer.boxes, golden["\(variant).boxes_\(index)"], relative: 0, absolute: 1e-5, "\(variant) layer \(index) boxes")
    }
    guard variant != "two" else {
      #expect(output.predictions.encoder == nil && output.selectedCells == nil)
      return
    }
    let cells = try #require(output.predictions.encoder)
    expectClose(cells.logits, golden["\(variant).cell_logits"], relative: 0, absolute: 1e-5, "mini-detector logits")
    expectClose(cells.boxes, golden["\(variant).cell_boxes"], relative: 0, absolute: 1e-5, "mini-detector boxes")
    #expect(output.selectedCells!.to(.float32).asArray(Float.self) == golden["\(variant).selected"].asArray(Float.self), "the top-N cells")
    let points = try #require(output.queries[0].points)
    expectClose(points, golden["\(variant).cls_points"], relative: 0, absolute: 1e-5, "classification points")
    expectClose(output.queries[1].points!, golden["\(variant).loc_points"], relative: 0, absolute: 1e-5, "localization points")
    expectClose(output.queries[0].content, golden["\(variant).cls_content"], relative: 0, absolute: 1e-5, "sampled classification content")
    expectClose(output.queries[1].content, golden["\(variant).loc_content"], relative: 0, absolute: 1e-5, "sampled localization content")
    // The padded image's selected cells lie in its valid part, and so do its sampled points' centres.
    let selected = output.selectedCells![1].asArray(Int64.self).map { Int($0) }
    #expect(selected.allSatisfy { $0 / 7 < 5 && $0 % 7 < 4 }, "\(selected)")
  }

  @Test(arguments: [AlignmentLoss.PositiveWeighting.qualityFocal, .none])
  func theAlignmentLossAndItsGradientEqualTheTranscription(weighting: AlignmentLoss.PositiveWeighting) throws {
    let golden = try Goldens(Self.folder.appendingPathComponent("golden.safetensors"))
    let logits = golden["alignment_logits"].clone()
    logits.requiresGrad = true
    let labels = golden["alignment_labels"].to(.int64)
    let boxes = golden["alignment_targets"]
    let targets = [
      MatchTarget(labels: labels[0..<2], boxes: boxes[0..<2]), MatchTarget(labels: labels[2..<3], boxes: boxes[2..<3]),
    ]
    let criterion = SetCriterion(
      matcher: HungarianMatcher(classWeight: 2, boxWeight: 5, giouWeight: 2, classificationCost: .focal(alpha: 0.25, gamma: 2)),
      classification: .alignment(AlignmentLoss(positiveWeighting: weighting)), classWeight: 2, boxWeight: 5, giouWeight: 2)
    let matches = [(queries: [4, 1], targets: [0, 1]), (queries: [2], targets: [0])]
    let terms = criterion.losses(
      LayerPredictions(logits: logits, boxes: golden["alignment_boxes"]), targets: targets, matches: matches, boxCount: 3)
    let name = weighting == .qualityFocal ? "quality_focal" : "ia_bce"
    expectClose(terms.classification.reshaped(1), golden["alignment_\(name)_loss"], relative: 0, absolute: 1e-6, "loss")
    terms.classification.backward()
    expectClose(try #require(logits.grad), golden["alignment_\(name)_gradient"], relative: 0, absolute: 1e-6, "gradient")
  }

  @Test func everySwitchOffIsConditionalDETR() throws {
    let folder = DETRTests.fixture("conditional_detr_r50_small")
    let conditional = try withSeededGenerator(0) { try ConditionalDETRModel.load(transformers: TransformersCheckpoint(folder: folder)) }
    let model = try withSeededGenerator(1) { try SDDETRModel(config: SDDETRConfig(conditional: conditional.config)) }
    let conditionalKeys = Set(conditional.stateDict().map(\.key))
    #expect(Set(model.stateDict().map(\.key)) == conditionalKeys, "the same keys")
    let report = try model.load(stateDict: Dictionary(uniqueKeysWithValues: conditional.stateDict().map { ($0.key, $0.tensor) }))
    #expect(report.isComplete)
    model.eval()
    let expected = try Goldens(folder.appendingPathComponent("expected.safetensors"))
    let (images, mask) = (expected["pixel_values"], expected["pixel_mask"] .== 0)
    let (reference, output) = withInferenceMode {
      (conditional(images: images, paddingMask: mask), model(images: images, paddingMask: mask))
    }
    for (a, b) in zip(reference.auxiliary + [reference.final], output.predictions.auxiliary + [output.predictions.final]) {
      expectClose(b.logits, a.logits, relative: 0, absolute: 0, "logits")
      expectClose(b.boxes, a.boxes, relative: 0, absolute: 0, "boxes")
    }
    expectClose(output.predictions.final.logits, expected["logits"], relative: 0, absolute: 1e-4, "transformers' logits")
    #expect(output.predictions.encoder == nil)
    // And the criterion is Conditional DETR's.
    #expect(model.makeCriterion().classification == conditional.makeCriterion().classification)
  }

  @Test func theR50PresetsSize() throws {
    let model = try withSeededGenerator(0) { try SDDETRModel(config: .r50) }
    let keys = Set(model.stateDict().map(\.key))
    for key in [
      "transformer.mini_detector.cls_tower.3.norm.weight", "transformer.task_queries.loc_offsets.bias",
      "transformer.decoder.layers.0.sa_qcontent_proj.weight", "transformer.decoder.layers.0.cls.ca_qpos_proj.weight",
      "transformer.decoder.layers.5.loc.ca_v_proj.weight", "transformer.decoder.loc_query_scale.layers.1.bias",
      "transformer.decoder.cls_norm.weight", "class_embed.bias",
    ] {
      #expect(keys.contains(key), "\(key)")
    }
    #expect(!keys.contains("query_embed.weight"), "task-aware queries replace the query table")
    let saWidth = try #require(model.stateDict().first { $0.key == "transformer.decoder.layers.0.sa_qcontent_proj.weight" })
    #expect(saWidth.tensor.shape == [512, 512], "the channel-concatenated self-attention is 2d wide")
  }

  @Test func pointsStartAtTheCentreAndTheEdgeMidpoints() throws {
    let maker = withSeededGenerator(0) { TaskAwareQueryMaker(dim: 32, points: 4, branches: 2) }
    let boxes = Tensor([Float(0.5), 0.5, 0.4, 0.2], shape: [1, 1, 4])
    let features = Tensor.ones([1, 32, 4, 4])
    let queries = maker(
      cellFeatures: Tensor.ones([1, 1, 32]), boxes: boxes, classFeatures: features, boxFeatures: features,
      validRatios: Tensor([Float(1), 1], shape: [1, 2]), detach: false)
    expectClose(queries[0].points!, Tensor([Float](repeating: 0.5, count: 8), shape: [1, 1, 4, 2]), relative: 0, absolute: 1e-6, "centre")
    let edges: [Float] = [0.68, 0.5, 0.32, 0.5, 0.5, 0.59, 0.5, 0.41]
    expectClose(queries[1].points!, Tensor(edges, shape: [1, 1, 4, 2]), relative: 0, absolute: 1e-5, "0.9 of the way to each edge")
  }

  @Test func aMapWithFewerCellsThanQueriesRepeatsItsRanking() {
    let logits = Tensor([Float(0.1), 0.9, 0.5], shape: [1, 3, 1])
    let cells = SDDETRModel.topCells(logits, mask: Tensor.zeros([1, 3], dtype: .bool), count: 5)
    #expect(cells.asArray(Int64.self) == [1, 2, 0, 1, 2])
  }

  static let badConfigs: [String: @Sendable (inout SDDETRConfig) -> Void] = [
    "points_per_branch": { $0.pointsPerBranch = 0 },
    "two_full_decoders": { ($0.splitCrossAttention, $0.twoFullDecoders) = (false, true) },
    "share_key_value": { ($0.splitCrossAttention, $0.shareKeyValue) = (false, true) },
    "self_attention_concat": { ($0.twoFullDecoders, $0.selfAttentionConcat) = (true, .token) },
    "box_reference": { $0.taskAwareQueries = false },
    "detach_sampled_content": { ($0.taskAwareQueries, $0.boxReference, $0.detachSampledContent) = (false, .center, true) },
    "mini_detector_conv_layers": { $0.miniDetectorConvLayers = -1 },
  ]

  @Test(arguments: badConfigs.keys.sorted())
  func badConfigsNameTheField(field: String) {
    var config = SDDETRConfig.small
    Self.badConfigs[field]!(&config)
    #expect { try SDDETRModel(config: config) } throws: { "\($0)".contains(field) }
  }
}
