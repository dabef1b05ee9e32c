import Detection
import Foundation
import Testing
import Torch
import TorchNN
import TorchTestSupport

@testable import Detectors

/// Focus-DETR equals the official code (huawei-noah/noah-research's, as detrex e244e6c holds it;
/// fixtures from Scripts/goldens/make_detrex_goldens.py --arch focus_detr).
@Suite struct FocusDETRTests {
  static let folder = DETRTests.fixture("focus_detr_detrex")

  /// The fixture's architecture: DINO's test model with 2 encoder layers, the cascade's first two
  /// ratios, self-attention among 64 tokens.
  static var config: FocusDETRConfig {
    var dino = DINOTests.config
    dino.transformer.encoderLayers = 2
    var config = FocusDETRConfig(dino: dino)
    config.cascade = [1.0, 0.8]
    config.selfAttentionTopK = 64
    return config
  }

  static func model() throws -> FocusDETRModel {
    let model = try withSeededGenerator(0) { try FocusDETRModel(config: config) }
    var state = try DINOTests.detrexState(folder)
    // The official state dict's aliases of the proposal class head, as a real checkpoint has them.
    for parameter in ["weight", "bias"] {
      for layer in 0..<2 {
        state["enhance_MCSP_layerlist.\(layer).\(parameter)"] = state["class_embed.2.\(parameter)"]
        state["transformer.encoder.enhance_MCSP.\(layer).\(parameter)"] = state["class_embed.2.\(parameter)"]
      }
    }
    try model.load(stateDict: DINOModel.stateDict(fromDetrex: state, source: "fixture"))
    return model
  }

  @Test func evaluationOutputsEqualTheOfficialCode() throws {
    let model = try Self.model()
    model.eval()
    let golden = try Goldens(Self.folder.appendingPathComponent("eval.safetensors"))
    let batch = DINOTests.batch(golden, targets: false)
    let output = withInferenceMode { model(batch) }
    expectClose(output.foregroundLogits, golden["foreground_logits"], relative: 0, absolute: 1e-4, "foreground logits")
    // 160x192: 639 tokens, 320 foreground; the layers update 320 and 256.
    #expect(output.updatedTokens == [[320, 320], [256, 256]])
    #expect(golden["foreground_counts"].asArray(Int.self) == [320, 320])
    for layer in 0..<2 {
      #expect(
        output.selectedTokens[layer].asArray(Int.self) == golden["selected_tokens.\(layer)"].asArray(Int.self),
        "layer \(layer) keeps the same tokens")
      #expect(
        output.selfAttentionTokens[layer].asArray(Int.self) == golden["self_attention_tokens.\(layer)"].asArray(Int.self),
        "layer \(layer) gives the self-attention to the same tokens")
    }
    expectClose(output.dino.layers[1].logits, golden["logits"], relative: 0, absolute: 1e-4, "logits")
    expectClose(output.dino.layers[1].boxes, golden["boxes"], relative: 0, absolute: 1e-4, "boxes")
    expectClose(output.dino.layers[0].logits, golden["aux_logits"], relative: 0, absolute: 1e-4, "auxiliary logits")
    expectClose(output.dino.encoder.logits, golden["encoder_logits"], relative: 0, absolute: 1e-4, "proposal logits")
    expectClose(output.dino.encoder.boxes, golden["encoder_boxes"], relative: 0, absolute: 1e-4, "proposal boxes")
    let detections = withInferenceMode { model.detect(batch) }
    for (index, image) in detections.enumerated() {
      expectClose(Tensor(image.scores), golden["detections.\(index).scores"], relative: 0, absolute: 1e-4, "scores")
      #expect(image.labels == golden["detections.\(index).labels"].asArray(Int.self))
    }
  }

  @Test func everyLossTermEqualsTheOfficialCodeWithItsDenoisingNoise() throws {
    let model = try Self.model()
    model.train()
    let golden = try Goldens(Self.folder.appendingPathComponent("train.safetensors"))
    let batch = DINOTests.batch(golden, targets: true)
    let noised = NoisedTargets(labels: golden["noised_labels"], boxes: golden["noised_boxes"])
    model.denoisingNoiseOverride = { _, _ in noised }
    let output = model(batch)
    expectClose(output.foregroundLogits, golden["foreground_logits"], relative: 0, absolute: 1e-4, "foreground logits")
    expectClose(output.dino.layers[1].logits, golden["logits"], relative: 0, absolute: 1e-4, "logits")
    expectClose(output.dino.denoising[1].boxes, golden["denoising_boxes"], relative: 0, absolute: 1e-4, "denoising boxes")
    let losses = try model.losses(for: output, batch: batch)
    #expect(losses.terms.count == 16)
    for term in losses.terms {
      expectClose(term.value, golden["loss.\(term.name)"], relative: 1e-4, absolute: 1e-6, term.name)
    }
    #expect(losses.terms.last!.name == "select_loss" && losses.terms.last!.weight == 1.5)
    losses.total.backward()
    DINOTests.expectGradients(of: model, golden)
  }

  @Test func configRoundTripsFlatAndRejectsAMismatchedCascade() throws {
    let json = try JSONEncoder().encode(FocusDETRConfig.small)
    let object = try #require(try JSONSerialization.jsonObject(with: json) as? [String: Any])
    #expect(
      object["class_count"] as? Int == 80 && object["cascade"] as? [Double] == [1.0, 0.6], "DINO's fields and Focus-DETR's side by side")
    #expect(try JSONDecoder().decode(FocusDETRConfig.self, from: json) == .small)
    var wrong = object
    wrong["cascade"] = [1.0, 0.8, 0.6]
    #expect {
      try JSONDecoder().decode(FocusDETRConfig.self, from: JSONSerialization.data(withJSONObject: wrong))
    } throws: {
      "\($0)".contains("cascade has 3 entries for 2 encoder layers")
    }
  }
}
