import Foundation
import Testing
import Torch
import TorchNN
import TorchTestSupport

@testable import Detectors

/// Every preset starts as its official code starts: parameter by parameter, the same shape, the same
/// distribution (mean, spread and extremes, within what sampling allows), the same constants, and the
/// same parameters equal to each other (the heads the references deep-copy into every layer).
/// Goldens: Scripts/goldens/make_init_goldens.py, which builds each official model fresh.
@Suite struct InitializationTests {
  struct Statistics: Decodable {
    var shape: [Int]
    var count: Int
    var mean: Double
    var std: Double
    var min: Double
    var max: Double
    var same_as: String?
  }

  struct Golden: Decodable {
    var family: String
    var preset: String
    var reference: String
    /// "official" (our keys), "detrex" (renamed, its aliases of the heads left out) or "torchvision" (renamed).
    var layout: String?
    var parameters: [String: Statistics]

    /// The parameters under our keys.
    var inOurKeys: [String: Statistics] {
      if layout == "torchvision" {
        return Dictionary(
          parameters.map { key, value in
            var value = value
            value.same_as = value.same_as.map { RetinaNetModel.torchvisionKeys.rename($0) }
            return (RetinaNetModel.torchvisionKeys.rename(key), value)
          }, uniquingKeysWith: { first, _ in first })
      }
      guard layout == "detrex" else { return parameters }
      let aliases = ["transformer.decoder.class_embed.", "transformer.decoder.bbox_embed.", "enhance_MCSP_layerlist.", "transformer.encoder.enhance_MCSP."]
      var renamed: [String: Statistics] = [:]
      for (key, value) in parameters where !aliases.contains(where: { key.hasPrefix($0) }) {
        var value = value
        value.same_as = value.same_as.flatMap { same in aliases.contains(where: { same.hasPrefix($0) }) ? nil : DINOModel.detrexKeys.rename(same) }
        renamed[DINOModel.detrexKeys.rename(key)] = value
      }
      return renamed
    }
  }

  static let folder = DETRTests.fixture("initialization")
  static let goldens = ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).filter { $0.hasSuffix(".json") }.sorted()

  /// The same measures of one of our tensors.
  static func statistics(of tensor: Tensor) -> Statistics {
    let values = tensor.to(.float64)
    return Statistics(
      shape: tensor.shape, count: tensor.elementCount, mean: values.mean().item(Double.self),
      std: values.variance(unbiased: false).item(Double.self).squareRoot(), min: values.min().item(Double.self),
      max: values.max().item(Double.self), same_as: nil)
  }

  /// Why `ours` cannot come from `reference`'s distribution, or nil. Constants must be equal; random
  /// tensors must agree in spread (within 10% and sampling noise), centre (within 6 standard errors)
  /// and the kind of extremes relative to the spread (which tells uniform from normal).
  static func difference(_ ours: Statistics, _ reference: Statistics) -> String? {
    guard ours.shape == reference.shape else { return "shape \(ours.shape), reference \(reference.shape)" }
    let scale = Swift.max(reference.std, 1e-12)
    // One value is no distribution: only the special constants (0, 1, the heads' 0.01 prior) are checked.
    if reference.count == 1, ![0, 1, -Foundation.log(99)].contains(where: { abs($0 - reference.mean) < 1e-6 }) { return nil }
    if reference.std == 0 {
      return ours.std == 0 && abs(ours.mean - reference.mean) <= 1e-6 * Swift.max(1, abs(reference.mean))
        ? nil : "reference constant \(reference.mean), ours mean \(ours.mean) std \(ours.std)"
    }
    let count = Double(reference.count)
    let spreadTolerance = 0.1 + 6 / count.squareRoot()
    if abs(ours.std / scale - 1) > spreadTolerance { return "std \(ours.std), reference \(reference.std)" }
    if abs(ours.mean - reference.mean) > 6 * scale / count.squareRoot() + 1e-9 { return "mean \(ours.mean), reference \(reference.mean)" }
    if reference.count >= 1000 {
      // Largest |value| over the spread: √3 for a uniform distribution, beyond 3 for a normal one of
      // this many samples (its exact value varies by sample, so only the kind is compared).
      let (mine, theirs) = (Swift.max(-ours.min, ours.max) / Swift.max(ours.std, 1e-12), Swift.max(-reference.min, reference.max) / scale)
      let bounded = theirs < 2.2
      if bounded ? abs(mine / theirs - 1) > 0.05 : mine < 2.8 {
        return "largest |value| / std \(mine), reference \(theirs) (\(bounded ? "uniform" : "normal"))"
      }
    }
    return nil
  }

  @Test(arguments: goldens)
  func aFreshPresetIsInitializedAsTheOfficialCode(file: String) throws {
    let golden = try JSONDecoder().decode(Golden.self, from: Data(contentsOf: Self.folder.appendingPathComponent(file)))
    let kind = try #require(ModelKind(rawValue: golden.family))
    let detector = try withSeededGenerator(0) { try DetectorFactory.make(kind: kind, preset: golden.preset) }
    let ours = Dictionary(detector.stateDict().map { ($0.key, $0.tensor) }, uniquingKeysWith: { first, _ in first })
    var problems: [String] = []
    for (key, reference) in golden.inOurKeys.sorted(by: { $0.key < $1.key }) {
      guard let tensor = ours[key] else {
        problems.append("\(key): missing")
        continue
      }
      if let problem = Self.difference(Self.statistics(of: tensor), reference) { problems.append("\(key): \(problem)") }
      if let same = reference.same_as, let other = ours[same], !(other.shape == tensor.shape && (other .== tensor).all().item(Bool.self)) {
        problems.append("\(key): the reference starts it equal to \(same), ours differs")
      }
    }
    #expect(golden.parameters.count > 100, "\(file)")
    #expect(problems.isEmpty, "\(golden.family) \(golden.preset) against \(golden.reference): \(problems.count) differences:\n\(problems.joined(separator: "\n"))")
  }
}
