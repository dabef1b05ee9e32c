import Foundation

/// A small, fast, seedable generator (SplitMix64): the same seed gives the same numbers on every
/// machine and Swift version, which `SystemRandomNumberGenerator` does not.
public struct SeededRandom: RandomNumberGenerator, Sendable {
  private var state: UInt64

  public init(seed: UInt64) {
    state = seed
  }

  /// A generator for one item of a stream (an epoch's sample, an image), independent of the others.
  public init(seed: UInt64, stream: UInt64, item: UInt64) {
    var mixer = SeededRandom(seed: seed ^ 0x9E37_79B9_7F4A_7C15)
    let a = mixer.next()
    var second = SeededRandom(seed: a ^ (stream &* 0xBF58_476D_1CE4_E5B9))
    let b = second.next()
    state = b ^ (item &* 0x94D0_49BB_1331_11EB)
  }

  public mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }

  /// Uniform in [0, 1).
  public mutating func unit() -> Double { Double(next() >> 11) * 0x1.0p-53 }

  /// Uniform in [low, high).
  public mutating func uniform(_ low: Double, _ high: Double) -> Double { low + (high - low) * unit() }

  /// Uniform integer in low...high.
  public mutating func integer(_ low: Int, _ high: Int) -> Int { low + Int(next() % UInt64(high - low + 1)) }

  /// A standard normal sample (Box-Muller).
  public mutating func normal() -> Double {
    let u = Swift.max(unit(), 1e-300)
    return (-2 * Foundation.log(u)).squareRoot() * Foundation.cos(2 * Double.pi * unit())
  }
}
