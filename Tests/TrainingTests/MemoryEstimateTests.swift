import Detection
import Detectors
import Foundation
import Testing
import Torch
import Training

/// The up-front memory estimate is a lower bound of what a pass really takes, and grows with what drives memory.
@Suite struct MemoryEstimateTests {
  func detector(_ kind: ModelKind) throws -> any Detector {
    try DetectorFactory.make(kind: kind, preset: "small")
  }

  @Test func theBoundGrowsWithBatchAndSizeAndGlobalAttention() throws {
    let detr = try detector(.detr)
    let small = MemoryEstimate.lowerBound(for: detr, batch: 1, height: 256, width: 256, training: false).total
    let double = MemoryEstimate.lowerBound(for: detr, batch: 2, height: 256, width: 256, training: false).total
    let large = MemoryEstimate.lowerBound(for: detr, batch: 1, height: 2048, width: 2048, training: false)
    #expect(double > small)
    // Global attention is quadratic in the tokens: 64× the pixels, ~4096× the attention.
    let attention = try #require(large.parts.first { $0.name == "encoder attention" }).bytes
    let attentionSmall = try #require(MemoryEstimate.lowerBound(for: detr, batch: 1, height: 256, width: 256, training: false).parts.first { $0.name == "encoder attention" }).bytes
    #expect(abs(attention / attentionSmall - 4096) < 1)
    #expect(MemoryEstimate.lowerBound(for: try detector(.deformableDETR), batch: 1, height: 256, width: 256, training: false).parts.allSatisfy { $0.name != "encoder attention" })
  }

  /// Every family whose encoder attends globally over stride-32 tokens counts that attention.
  @Test(arguments: [ModelKind.detr, .conditionalDETR, .smcaDETR, .sdDETR])
  func globalEncodersCountTheirAttention(kind: ModelKind) throws {
    let bound = MemoryEstimate.lowerBound(for: try detector(kind), batch: 1, height: 512, width: 512, training: false)
    #expect(bound.parts.contains { $0.name == "encoder attention" && $0.bytes > 0 }, "\(kind)")
  }

  @Test func checkRefusesOnlyWhatExceedsTheAvailableMemory() throws {
    let bound = MemoryEstimate.lowerBound(for: try detector(.detr), batch: 1, height: 256, width: 256, training: true)
    try bound.check("x", advice: "y", available: bound.total * 2)
    #expect { try bound.check("batch 1 at 256×256", advice: "lower --image-size", available: bound.total / 2) } throws: {
      "\($0)".hasPrefix("batch 1 at 256×256 needs at least") && "\($0)".hasSuffix("available: lower --image-size")
    }
    #expect((MemoryEstimate.availableBytes ?? 0) > 0)
  }
}
