import Foundation
import Testing
import Torch

/// Golden tensors written by a script under Scripts/goldens from the reference library.
public struct Goldens: Sendable {
  public let contents: SafeTensors.Contents
  public let file: String

  public init(_ url: URL) throws {
    contents = try SafeTensors.load(contentsOf: url)
    file = url.lastPathComponent
  }

  /// The tensor stored under `key`; a missing key stops the test with the file's name (regenerate the goldens).
  public subscript(_ key: String) -> Tensor {
    guard let tensor = contents.tensors[key] else {
      fatalError("\(file) has no golden '\(key)': rerun the script named in its metadata (\(contents.metadata["script"] ?? "?"))")
    }
    return tensor
  }

  /// Which library version made the file.
  public var madeBy: String { "\(contents.metadata["script"] ?? "?") with torch \(contents.metadata["torch"] ?? "?")" }
}

/// Expects equal shapes and, element-wise, `|actual - expected| <= absolute + relative * |expected|`
/// (exact equality for integer and bool tensors).
public func expectClose(
  _ actual: Tensor, _ expected: Tensor, relative: Double = 1e-5, absolute: Double = 1e-6, _ what: String = "",
  sourceLocation: SourceLocation = #_sourceLocation
) {
  guard actual.shape == expected.shape else {
    Issue.record("\(what): shape \(actual.shape) differs from expected \(expected.shape)", sourceLocation: sourceLocation)
    return
  }
  if !expected.dtype.isFloatingPoint {
    let equal = actual.to(.int64).asArray(Int.self) == expected.to(.int64).asArray(Int.self)
    #expect(equal, "\(what): integer values differ", sourceLocation: sourceLocation)
    return
  }
  let a = actual.detached().to(.float64)
  let e = expected.to(.float64)
  let excess = (a - e).abs() - (e.abs() * relative + absolute)
  let worst = excess.elementCount == 0 ? -1 : excess.max().item(Double.self)
  let maxDifference = excess.elementCount == 0 ? 0 : (a - e).abs().max().item(Double.self)
  #expect(
    worst <= 0, "\(what): max |difference| \(maxDifference) exceeds \(absolute) + \(relative)·|expected|", sourceLocation: sourceLocation)
}

/// Compares autograd's gradient of `function(input).sum()` with central finite differences, in float64.
public func expectGradientMatchesFiniteDifferences(
  of function: (Tensor) -> Tensor, at input: Tensor, step: Double = 1e-6, tolerance: Double = 1e-5,
  sourceLocation: SourceLocation = #_sourceLocation
) {
  let x = input.to(.float64).clone().detached().requiringGrad()
  function(x).sum().backward()
  guard let analytic = x.grad else {
    Issue.record("no gradient reached the input", sourceLocation: sourceLocation)
    return
  }
  let base = input.to(.float64).flattened().asArray(Double.self)
  var numeric: [Double] = []
  withNoGrad {
    for index in base.indices {
      var plus = base
      var minus = base
      plus[index] += step
      minus[index] -= step
      let fPlus = function(Tensor(plus, shape: input.shape)).sum().item(Double.self)
      let fMinus = function(Tensor(minus, shape: input.shape)).sum().item(Double.self)
      numeric.append((fPlus - fMinus) / (2 * step))
    }
  }
  expectClose(
    analytic, Tensor(numeric, shape: input.shape), relative: tolerance, absolute: tolerance, "gradient", sourceLocation: sourceLocation)
}

/// Runs `body` with a fresh generator seeded with `seed` as this thread's generator: every draw in it
/// that names no generator (creation, parameter initialization, dropout) comes from that generator, so
/// tests running in parallel on other threads neither disturb the sequence nor see it. The sequence is
/// the one libtorch's default generator gives after `manual_seed(seed)`.
public func withSeededGenerator<Result>(_ seed: UInt64, _ body: () throws -> Result) rethrows -> Result {
  try Generator(seed: seed).withCurrent(body)
}

/// Runs `body` while no other test changes libtorch's process-wide thread count: for tests that set
/// it, and for tests that compare two runs bit for bit (a reduction split over another number of
/// threads may round differently).
public func withExclusiveThreadCount<Result>(_ body: () throws -> Result) rethrows -> Result {
  threadCountLock.lock()
  defer { threadCountLock.unlock() }
  let previous = Torch.threadCount
  defer { Torch.threadCount = previous }
  return try body()
}

private let threadCountLock = NSLock()
