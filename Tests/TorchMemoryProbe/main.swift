// Creates and drops a million small tensors in a process of its own (so no other test's allocations
// interfere) and prints the resident-memory growth and the change in live tensor handles.
import Foundation
import Torch

func residentMiB() -> Double {
  guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8), let pages = Double(text.split(separator: " ")[1])
  else { return 0 }
  return pages * Double(sysconf(Int32(_SC_PAGESIZE))) / 1_048_576
}

let count = Int(CommandLine.arguments.dropFirst().first ?? "") ?? 1_000_000
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
