// Per-op overhead through the shim: small ops where dispatch, not arithmetic, dominates.
// Prints one line per op: microseconds per call (median of 5 runs). Compare with
// Scripts/benchmarks/op_overhead.py, which times the same ops from Python torch; run both with
// Scripts/benchmarks/op-overhead.sh.
import Foundation
import Torch

Torch.threadCount = 1
let iterations = Int(CommandLine.arguments.dropFirst().first ?? "") ?? 20_000
let a = Tensor.randn([4, 4], generator: Generator(seed: 0))
let b = Tensor.randn([4, 4], generator: Generator(seed: 1))
let big = Tensor.randn([64, 256], generator: Generator(seed: 2))
let weight = Tensor.randn([256, 256], generator: Generator(seed: 3))

let cases: [(String, () -> Void)] = [
  ("add", { _ = a + b }),
  ("mul_scalar", { _ = a * 2.0 }),
  ("matmul_4x4", { _ = a.matmul(b) }),
  ("sigmoid", { _ = a.sigmoid() }),
  ("sum", { _ = a.sum() }),
  ("view", { _ = a.view(16) }),
  ("slice_index", { _ = a[1..<3, 0] }),
  ("cat", { _ = Tensor.cat([a, b]) }),
  ("linear_64x256", { _ = Functional.linear(big, weight: weight) }),
  ("add_inplace", { a += 0.0 }),
]

func measure(_ body: () -> Void) -> Double {
  var runs: [Double] = []
  for _ in 0..<5 {
    let start = DispatchTime.now().uptimeNanoseconds
    for _ in 0..<iterations { body() }
    runs.append(Double(DispatchTime.now().uptimeNanoseconds - start) / Double(iterations) / 1000)
  }
  return runs.sorted()[2]
}

print("op,microseconds_per_call")
withNoGrad {
  for (name, body) in cases {
    for _ in 0..<1000 { body() }
    print("\(name),\(String(format: "%.3f", measure(body)))")
  }
}
