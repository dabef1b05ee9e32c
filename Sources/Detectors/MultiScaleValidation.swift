/// The multi-scale settings Deformable DETR, DINO and Focus-DETR share, checked naming the field.
func validateMultiScale(backboneStages: [Int], featureLevels: Int, encoderPoints: Int, decoderPoints: Int, focalAlpha: Double) throws {
  guard !backboneStages.isEmpty, backboneStages.allSatisfy({ (1...4).contains($0) }), backboneStages == backboneStages.sorted(),
    Set(backboneStages).count == backboneStages.count
  else {
    throw ConfigError("backbone_stages must list distinct ResNet stages among 1-4 in increasing order, got \(backboneStages)")
  }
  guard (backboneStages.count...8).contains(featureLevels) else {
    throw ConfigError("feature_levels must be between \(backboneStages.count) (one per backbone stage) and 8, got \(featureLevels)")
  }
  guard (1...64).contains(encoderPoints), (1...64).contains(decoderPoints) else {
    throw ConfigError("encoder_points and decoder_points must be between 1 and 64, got \(encoderPoints) and \(decoderPoints)")
  }
  guard focalAlpha.isFinite, (0...1).contains(focalAlpha) else { throw ConfigError("focal_alpha must lie in [0, 1], got \(focalAlpha)") }
}

extension DeformableDETRConfig {
  /// Throws a `ConfigError` naming the field when the config cannot be built.
  public func validate() throws {
    try transformer.validate()
    try validateMultiScale(
      backboneStages: backboneStages, featureLevels: featureLevels, encoderPoints: encoderPoints, decoderPoints: decoderPoints,
      focalAlpha: focalAlpha)
  }
}

extension DINOConfig {
  /// Throws a `ConfigError` naming the field when the config cannot be built.
  public func validate() throws {
    try transformer.validate()
    try validateMultiScale(
      backboneStages: backboneStages, featureLevels: featureLevels, encoderPoints: encoderPoints, decoderPoints: decoderPoints,
      focalAlpha: focalAlpha)
    guard (0...100_000).contains(denoisingQueries) else { throw ConfigError("denoising_queries must be between 0 and 100000, got \(denoisingQueries)") }
    guard (1...100_000).contains(detectionsPerImage) else {
      throw ConfigError("detections_per_image must be between 1 and 100000, got \(detectionsPerImage)")
    }
    guard labelNoiseRatio.isFinite, (0...1).contains(labelNoiseRatio) else { throw ConfigError("label_noise_ratio must lie in [0, 1], got \(labelNoiseRatio)") }
    guard boxNoiseScale.isFinite, boxNoiseScale >= 0 else { throw ConfigError("box_noise_scale must be 0 or more, got \(boxNoiseScale)") }
    guard positionTemperature.isFinite, positionTemperature > 0, positionOffset.isFinite else {
      throw ConfigError("position_temperature must be positive and position_offset finite, got \(positionTemperature) and \(positionOffset)")
    }
  }
}
