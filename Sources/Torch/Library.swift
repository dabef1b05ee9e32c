import CTorch

/// Facts about the libtorch underneath, and process-wide settings.
public enum Torch {
  /// The libtorch version the shim was built against, e.g. `2.13.0`.
  public static var libtorchVersion: String {
    ensureCompatibleShim()
    return String(cString: ctorch_libtorch_version())
  }

  /// Whether libtorch was built with CUDA and sees at least one GPU.
  public static var isCUDAAvailable: Bool {
    ensureCompatibleShim()
    return ctorch_cuda_is_available()
  }

  /// The most GPU memory libtorch's allocator has held for tensors on `device` so far, in MiB; nil
  /// off a GPU or when the shim was built without the CUDA toolkit.
  public static func cudaPeakAllocatedMiB(_ device: Device) -> Double? {
    guard case .cuda(let index) = device else { return nil }
    let bytes = ctorch_cuda_peak_allocated_bytes(Int32(index))
    return bytes < 0 ? nil : Double(bytes) / Double(1 << 20)
  }

  /// Lets (true) or stops (false) GPU convolutions and matrix products using TensorFloat-32 inputs,
  /// which are faster and round to 10 mantissa bits (libtorch's default: convolutions yes, matrix
  /// products no). Comparisons with the CPU at float32 tolerances need it off. Process-wide.
  public static func allowTF32(_ allow: Bool) { ctorch_set_allow_tf32(allow) }

  /// The number of CUDA devices libtorch sees (0 without CUDA).
  public static var cudaDeviceCount: Int { Int(ctorch_cuda_device_count()) }

  /// The number of threads libtorch uses for intra-op parallelism.
  public static var threadCount: Int {
    get { Int(ctorch_get_num_threads()) }
    set { ctorch_set_num_threads(Int32(newValue)) }
  }

  /// How many threads the shim's own kernels (fused deformable attention, dropout, max pooling) split a
  /// large loop over: `threadCount` when the shim shares libtorch's OpenMP runtime, 1 when it was built
  /// without it and those kernels run on the calling thread alone.
  public static var shimParallelThreadCount: Int {
    ensureCompatibleShim()
    return Int(ctorch_shim_parallel_thread_count())
  }

  /// Keep freed memory in the process for reuse (glibc malloc) instead of returning it to the kernel:
  /// no allocation gets its own mapping and the heap is never trimmed, so the large tensors of each
  /// forward and backward pass reuse the pages of the previous one instead of faulting in fresh zeroed
  /// pages (about 110,000 page faults, 430 MiB zeroed, per ResNet-50 Deformable DETR training step at
  /// batch 2; 5-15% of an inference on 2 cores). Resident memory then stays at its peak.
  /// Process-wide; the `detr` tool turns it on, a host application decides for itself. Off by default.
  public static func keepFreedMemory(_ keep: Bool) { ctorch_set_keep_freed_memory(keep) }

  /// Tensor handles alive in the process (created through the shim and not yet released).
  public static var liveTensorCount: Int { Int(ctorch_live_tensor_count()) }

  /// Seeds libtorch's default CPU generator (used by `rand`, dropout and init when no generator is given
  /// and the thread has none of its own: see `Generator.withCurrent(_:)`).
  public static func manualSeed(_ seed: UInt64) {
    ensureCompatibleShim()
    ctorch_manual_seed(seed)
  }

  /// Stops with a message saying what to do when the installed shim does not match this package's header.
  static func ensureCompatibleShim() {
    _ = shimCheck
  }

  private static let shimCheck: Void = {
    let installed = ctorch_abi_version()
    if installed != CTORCH_ABI_VERSION {
      fatalError(
        "libctorch has ABI version \(installed) but this build expects \(CTORCH_ABI_VERSION): run Scripts/setup.sh to rebuild the shim")
    }
  }()
}
