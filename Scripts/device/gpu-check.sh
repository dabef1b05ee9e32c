#!/usr/bin/env bash
# The GPU check, in one command on a GPU machine with CUDA PyTorch, nvcc and CMake (no Swift needed):
# builds the shim there against python3's CUDA libtorch (with the fused attention's CUDA kernels), then
#   1. detr check-device --device cuda: every family's losses and gradients against the CPU (1e-4), and
#      the CUDA kernel against the composed attention on the GPU and the CPU kernel, forward and backward;
#   2. the CUDA kernel against the official MultiScaleDeformableAttention op (when packed): outputs and
#      time, fp32 and bf16 inputs;
#   3. Deformable DETR R50 at 800x1333: ours against transformers on the same GPU and PyTorch, inference
#      batch 1 and a training step batch 2, fp32 and bf16.
# Needs .device/ from Scripts/device/pack.sh (carried). Results go to $OUT (or ./gpu-check-out): one log
# and JSON files. Fits a 10-minute run on an H100.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
out=${OUT:-$root/gpu-check-out}
mkdir -p "$out"
exec > >(tee "$out/gpu-check.log") 2>&1
python=${PYTHON:-python3}
torch_dir=$("$python" -c 'import os, torch; print(os.path.dirname(torch.__file__))')
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
echo "torch $("$python" -c 'import torch; print(torch.__version__, torch.version.cuda)'), nvcc $(nvcc --version | tail -1)"
build=/tmp/ctorch-cuda
cmake -S Shim -B "$build" -DLIBTORCH="$torch_dir" -DCTORCH_NATIVE=OFF -DCMAKE_CUDA_ARCHITECTURES="${CUDA_ARCHITECTURES:-90}" \
  -DCMAKE_BUILD_TYPE=Release >"$out/cmake.log" 2>&1 || { tail -20 "$out/cmake.log"; exit 1; }
cmake --build "$build" --target ctorch -j "$(nproc)" >"$out/build.log" 2>&1 || { grep -m5 -A5 error "$out/build.log"; exit 1; }
grep -q "CUDA kernels" "$out/cmake.log" && echo "shim built with the CUDA kernels" || echo "WARNING: shim built without CUDA kernels"
nvidia_libs=$(find "$(dirname "$torch_dir")/nvidia" -maxdepth 3 -name lib -type d 2>/dev/null | tr '\n' ':')
export LD_LIBRARY_PATH="$build:$torch_dir/lib:$root/.device/lib:$nvidia_libs${LD_LIBRARY_PATH:-}"
detr="$root/.device/detr"
status=0

echo "== 1. detr check-device --device cuda"
"$detr" check-device --device cuda --json "$out/check-device.json" || status=1

echo "== 2. the CUDA kernel against the official op"
"$python" Scripts/device/attention_kernels.py --official "$root/.device/official-ops" --json "$out/kernels.json" || status=1

echo "== 3. Deformable DETR R50, 800x1333, ours vs transformers"
for precision in fp32 bf16; do
  for mode in inference train; do
    batch=1 flag=""
    [[ $mode == train ]] && batch=2 flag="--train"
    "$detr" benchmark --model deformable-detr --preset r50 --image-size 800 --image-width 1333 --batch-size $batch $flag \
      ${flag:+--freeze-backbone} --device cuda --precision $precision --iterations 20 --json "$out/ours-$mode-$precision.json" >/dev/null || status=1
    PYTHONPATH=Scripts/benchmarks "$python" Scripts/benchmarks/transformers_reference.py --model deformable-detr --image-size 800 \
      --image-width 1333 --batch-size $batch $flag --device cuda --precision $precision --iterations 20 >"$out/transformers-$mode-$precision.json" || status=1
    "$python" - "$out/ours-$mode-$precision.json" "$out/transformers-$mode-$precision.json" "$mode" "$precision" <<'PY'
import json, sys
ours = json.load(open(sys.argv[1]))
theirs = json.loads(open(sys.argv[2]).read().strip().splitlines()[-1])
print(f"{sys.argv[3]:9} {sys.argv[4]}: ours {ours['latency_ms_p50']:.1f} ms, transformers {theirs['latency_ms_p50']:.1f} ms, "
      f"ratio {theirs['latency_ms_p50'] / ours['latency_ms_p50']:.2f}x (goal 1.5x); ours peak GPU {ours.get('gpu_peak_allocated_mib', 0):.0f} MiB")
PY
  done
done
exit $status
