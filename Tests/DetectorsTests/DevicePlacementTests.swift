import Detection
import Testing
import Torch
import TorchTestSupport

@testable import Detectors

/// Devices as the commands name and check them, and batches moving between them. (That the forward
/// passes and losses keep every tensor on their inputs' device is checked on a GPU, by the parity tests
/// run there with SWIFT_DETR_TEST_DEVICE=cuda: Scripts/device/gpu-check.sh.)
@Suite struct DevicePlacementTests {
  @Test func batchOnItsOwnDeviceIsItself() {
    let images = withSeededGenerator(7) { Tensor.randn([2, 3, 16, 24]) }
    let batch = DetectorBatch(unpaddedImages: images, targets: [])
    let moved = batch.to(device: .cpu, pinned: true)
    #expect(moved.images === batch.images && moved.paddingMask === batch.paddingMask)
  }

  @Test func deviceNamesParse() {
    #expect(Device("cpu") == .cpu)
    #expect(Device("cuda") == .cuda(0))
    #expect(Device("cuda:3") == .cuda(3))
    #expect(Device("cuda:-1") == nil && Device("gpu") == nil && Device("cuda:") == nil && Device("CPU") == nil)
  }

  /// A GPU libtorch does not have or see fails the check with what to do: any GPU on this machine,
  /// one past the last where there are GPUs.
  @Test func unavailableGPUSaysWhatToDo() throws {
    let count = Torch.cudaDeviceCount
    #expect(Device.preferred == (count > 0 ? .cuda(0) : .cpu))
    do {
      try Device.cuda(count).checkAvailable()
      Issue.record("cuda:\(count) passed the check with \(count) GPUs")
    } catch let error as DeviceError {
      #expect(error.message.contains(count == 0 ? "--device cpu" : "libtorch sees \(count) GPU"))
    }
    try Device.cpu.checkAvailable()
  }

  @Test func fusedAttentionRunsOnTheCPU() {
    #expect(Functional.isFusedDeformableAttentionAvailable(on: .cpu))
  }
}
