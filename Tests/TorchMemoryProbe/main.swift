// Memory checks that need a process of their own, so that no other test's allocations interfere.
//   torch-memory-probe [count]  creates and drops `count` small tensors (default a million) and prints
//                               the resident-memory growth and the change in live tensor handles.
//   torch-memory-probe reuse    repeats a computation on 256 MiB tensors, with and without
//                               `Torch.keepFreedMemory`, and prints the page faults of its last pass.
import Foundation
import Torch

func residentMiB() -> Double {
  guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8), let pages = Double(text.split(separator: " ")[1])
  else { return 0 }
  return pages * Double(sysconf(Int32(_SC_PAGESIZE))) / 1_048_576
}

func minorFaults() -> Int {
  var usage = rusage()
  getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
  return usage.ru_minflt
}

/// Page faults taken by the last of six passes of a computation whose tensors (`elements` floats
/// each) are all freed at the end of a pass, as the activations of a forward pass are. The heap may
/// take a few passes to reach the layout a pass fits in (how the earlier small allocations left it
/// decides whether a freed block fits the next, 64-byte-aligned request: seen to depend even on the
/// length of the program's path), after which a kept heap takes no faults: the steady state a
/// training loop is in.
func faultsOfRepeatedPass(elements: Int) -> Int {
  var faults = 0
  for _ in 0..<6 {
    let before = minorFaults()
    let input = Tensor.full([elements], 1, dtype: .float32)
    let scaled = input * 2
    let result = (scaled + input).sum().item(Double.self)
    precondition(result == 3 * Double(elements))
    faults = minorFaults() - before
  }
  return faults
}

func smallTensors(count: Int) {
  let base = Tensor([1, 2, 3, 4] as [Float])
  for _ in 0..<20_000 { _ = base + 1 }
  let handlesBefore = Torch.liveTensorCount
  let memoryBefore = residentMiB()
  var checksum = 0.0
  for index in 0..<count {
    let t = base * Float(index % 7)
    if index % 100_000 == 0 { checksum += t.sum().item(Double.self) }
  }
  print(
    "{\"rss_growth_mib\": \(residentMiB() - memoryBefore), \"live_handles_delta\": \(Torch.liveTensorCount - handlesBefore), \"tensors\": \(count), \"checksum\": \(checksum)}"
  )
}

if CommandLine.arguments.dropFirst().first == "reuse" {
  let elements = 64 << 20  // 256 MiB of floats: far above glibc's largest mmap threshold (32 MiB)
  let pages = 3 * elements * 4 / Int(sysconf(Int32(_SC_PAGESIZE)))  // a pass makes three tensors of this size
  let returned = faultsOfRepeatedPass(elements: elements)
  Torch.keepFreedMemory(true)
  let kept = faultsOfRepeatedPass(elements: elements)
  Torch.keepFreedMemory(false)
  print("{\"pages\": \(pages), \"faults_returned\": \(returned), \"faults_kept\": \(kept)}")
} else {
  smallTensors(count: Int(CommandLine.arguments.dropFirst().first ?? "") ?? 1_000_000)
}
