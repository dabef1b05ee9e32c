import Detection
import Foundation
import Torch
import TorchNN

/// DINO as detrex builds it. Keys equal detrex's `state_dict` (`neck.convs.0.conv.weight`,
/// `transformer.encoder.layers.0.attentions.0.sampling_offsets.weight`, `class_embed.6.bias`,
/// `label_enc.weight`, ...) except the backbone, which has torchvision's ResNet keys under
/// `backbone.` (`DINOModel.detrexKeys` renames detectron2's), and the decoder's second names for the
/// heads (`transformer.decoder.class_embed.*`), which detrex lists twice and we once.
public final class DINOModel: Module {
  public let config: DINOConfig
  let parts: DINOComponents
  let encoderLayers: ModuleList<DetrexDeformableEncoderLayer>

  /// Replaces the random draws of the denoising noise (for parity tests that feed a reference's
  /// noised targets); nil draws from the default generator.
  public var denoisingNoiseOverride: (@Sendable ([MatchTarget], DenoisingGroups) -> NoisedTargets)? {
    get { parts.denoisingNoiseOverride }
    set { parts.denoisingNoiseOverride = newValue }
  }

  public init(config: DINOConfig) {
    precondition(config.featureLevels >= config.backboneStages.count, "DINO: fewer feature levels than backbone stages")
    self.config = config
    let settings = config.transformer
    let encoderLayers = ModuleList(
      identicalCopies(count: settings.encoderLayers) { _ in
        DetrexDeformableEncoderLayer(
          dim: settings.hiddenDim, heads: settings.encoder.heads, levels: config.featureLevels, points: config.encoderPoints,
          feedForwardDim: settings.encoder.feedForwardDim, dropout: settings.dropout)
      })
    self.encoderLayers = encoderLayers
    parts = DINOComponents(config: config, encoderModules: Array(encoderLayers))
    super.init()
    let transformer = Module()
    parts.register(in: self, transformer: transformer)
    transformer.registerModule(atPath: "encoder.layers", encoderLayers)
    registerModule("transformer", transformer)
    parts.registerHeads(in: self)
  }

  /// The forward pass on `batch`. With targets and in training mode, denoising queries are added
  /// (their noise from the default generator, or `denoisingNoiseOverride`).
  public func callAsFunction(_ batch: DetectorBatch) -> DINOOutput { forward(batch, lap: { _ in }, finalLayerOnly: false) }

  /// `finalLayerOnly`: the heads of the last decoder layer alone (detection needs no more).
  func forward(_ batch: DetectorBatch, lap: (String) -> Void, finalLayerOnly: Bool) -> DINOOutput {
    let input = parts.tokens(batch).tokens
    lap("backbone and neck")
    let reference = input.encoderReferencePoints
    var memory = input.tokens
    for layer in encoderLayers {
      memory = layer(memory, position: input.positions, referencePoints: reference, levels: input.levels, paddingMask: input.attentionMask)
    }
    lap("encoder")
    let output = parts.decode(memory: memory, input: input, batch: batch, training: isTraining, finalLayerOnly: finalLayerOnly)
    lap("query selection and decoder")
    return output
  }

  /// The 3 · (decoder layers + 1) + 3 · decoder layers terms of detrex's DINO criterion (15 for 2 layers).
  public func losses(for output: DINOOutput, targets: [MatchTarget]) throws -> TrainingLosses {
    TrainingLosses(terms: try parts.lossTerms(for: output, targets: targets))
  }
}

extension DINOModel: StagedDetector {
  public var kind: ModelKind { .dino }
  public func encodedConfig() throws -> Data { try JSONEncoder().encode(config) }
  public func losses(for batch: DetectorBatch) throws -> TrainingLosses { try losses(for: self(batch), targets: batch.targets) }
  public func detect(_ batch: DetectorBatch) -> [ImageDetections] { detect(batch, lap: { _ in }) }
  public func detect(_ batch: DetectorBatch, lap: (String) -> Void) -> [ImageDetections] {
    let detections = parts.detections(forward(batch, lap: lap, finalLayerOnly: true), outputSizes: batch.outputSizes)
    lap("post-processing")
    return detections
  }
  /// detrex's DINO recipe: backbone at the backbone rate, no weight decay on normalization layers.
  public var parameterRules: [ParameterRule] { DINOComponents.parameterRules }
}
