import Testing
import Torch
import TorchTestSupport

@Suite struct MemoryTests {
  /// A million small tensors created and dropped: every handle is released and resident memory stays flat.
  @Test func aMillionSmallTensorsLeaveNothingBehind() {
    let base = Tensor([1, 2, 3, 4] as [Float])
    for _ in 0..<20_000 { _ = base + 1 }  // warm up allocator caches
    let handlesBefore = Torch.liveTensorCount
    let memoryBefore = residentMemoryMiB()
    for index in 0..<1_000_000 {
      let t = base * Float(index % 7)
      if index % 100_000 == 0 { #expect(t.elementCount == 4) }
    }
    let growth = residentMemoryMiB() - memoryBefore
    #expect(growth < 50, "resident memory grew by \(growth) MiB")
    // Other tests running in parallel hold a few tensors; a leak here would leave a million.
    #expect(Torch.liveTensorCount - handlesBefore < 10_000, "handles before \(handlesBefore), after \(Torch.liveTensorCount)")
  }
}
