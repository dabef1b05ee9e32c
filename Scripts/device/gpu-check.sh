#!/usr/bin/env bash
# The GPU check, in one command on a GPU machine with CUDA PyTorch, nvcc and CMake (no Swift needed):
# builds the shim there against python3's CUDA libtorch (with the fused attention's CUDA kernels), then
#   1. detr check-device --device cuda: every family's losses and gradients against the CPU (1e-4), and
#      the CUDA kernel against the composed attention on the GPU and the CPU kernel, forward and backward;
#   2. the CUDA kernel against the official MultiScaleDeformableAttention op (when packed): outputs,
#      gradients and time, fp32 and bf16 inputs (attention_kernels.py);
#   3. Deformable DETR R50 at 800x1333: ours against transformers on the same GPU and PyTorch, inference
#      batch 1 and a training step batch 2, fp32 and bf16.
# Needs the pack from Scripts/device/pack.sh (.device-1/ and .device-2/, carried in two calls: see there).
# Results go to $OUT (or ./gpu-check-out): the log and JSON files. Fits a 10-minute run on an H100.
#
# A dry run of the same steps on a CPU machine (the plumbing, not the GPU): GPU_CHECK_DEVICE=cpu
# GPU_CHECK_SIZE=64x96 GPU_CHECK_ITERATIONS=2 PYTHON=<a python with torch and transformers> DETR=<a detr>.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
out=${OUT:-$root/gpu-check-out}
mkdir -p "$out"
exec > >(tee "$out/gpu-check.log") 2>&1
python=${PYTHON:-python3}
device=${GPU_CHECK_DEVICE:-cuda}
size=${GPU_CHECK_SIZE:-800x1333}
iterations=${GPU_CHECK_ITERATIONS:-10}
pack=/tmp/detr-pack
if [[ -z "${DETR:-}" ]]; then
  parts=("$root"/.device-*/pack.part-*)
  if [[ ${#parts[@]} -ne 2 || ! -f ${parts[0]} ]]; then
    echo "the pack is not all here (found: ${parts[*]}): carry .device-1 in one call and .device-2 in the next (Scripts/device/pack.sh)"
    exit 1
  fi
  rm -rf "$pack" && mkdir -p "$pack"
  cat "${parts[@]}" | xz -d | tar -x -C "$pack" --strip-components 1 || { echo "the pack's parts do not join: pack again"; exit 1; }
  echo "unpacked detr of commit $(cat "$pack/commit")"
fi
detr=${DETR:-$pack/detr}
height=${size%x*} width=${size#*x}
torch_dir=$("$python" -c 'import os, torch; print(os.path.dirname(torch.__file__))')
[[ $device == cuda ]] && { nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; nvcc --version | tail -1; }
echo "torch $("$python" -c 'import torch; print(torch.__version__, torch.version.cuda)'), device $device, $size, $iterations iterations"
build=${SHIM_BUILD:-/tmp/ctorch-$device}
start=$SECONDS
nccl_root=$(dirname "$torch_dir")/nvidia/nccl  # pip's NCCL headers, for the data-parallel NCCL path
cmake -S Shim -B "$build" -DLIBTORCH="$torch_dir" -DNCCL_ROOT="$nccl_root" -DCTORCH_NATIVE=OFF -DCMAKE_CUDA_ARCHITECTURES="${CUDA_ARCHITECTURES:-90}" \
  -DCMAKE_BUILD_TYPE=Release >"$out/cmake.log" 2>&1 || { tail -20 "$out/cmake.log"; exit 1; }
cmake --build "$build" --target ctorch -j "$(nproc)" >"$out/build.log" 2>&1 || { grep -m5 -A5 error "$out/build.log"; exit 1; }
if grep -q "CUDA kernels" "$out/cmake.log"; then echo "shim built with the CUDA kernels in $((SECONDS - start)) s"; else echo "shim built without CUDA kernels in $((SECONDS - start)) s"; fi
nvidia_libs=$(find "$(dirname "$torch_dir")/nvidia" -maxdepth 3 -name lib -type d 2>/dev/null | tr '\n' ':')
# Only detr gets the packed libraries (Python keeps the machine's own).
run_detr() { LD_LIBRARY_PATH="$build:$torch_dir/lib:$nvidia_libs$pack/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$detr" "$@"; }
run_detr --version || exit 1
status=0

echo "== 1. detr check-device --device $device"
run_detr check-device --device "$device" --json "$out/check-device.json" | grep -v "^ok " || status=1

echo "== 2. the CUDA kernel against the official op"
if [[ $device == cuda ]]; then
  "$python" Scripts/device/attention_kernels.py --official "$pack/official-ops" --json "$out/kernels.json" || status=1
else
  echo "(needs a GPU)"
fi

echo "== 3. Deformable DETR R50, ${height}x${width}, ours vs transformers on $device"
for precision in fp32 bf16; do
  for mode in inference train; do
    batch=1 flags=()
    [[ $mode == train ]] && batch=2 flags=(--train)
    ours="$out/ours-$mode-$precision.json" theirs="$out/transformers-$mode-$precision.json"
    run_detr benchmark --model deformable-detr --preset r50 --image-size "$height" --image-width "$width" --batch-size $batch \
      "${flags[@]}" ${flags:+--freeze-backbone} --device "$device" --precision $precision --iterations "$iterations" --json "$ours" \
      >/dev/null || { status=1; continue; }
    PYTHONPATH=Scripts/benchmarks "$python" Scripts/benchmarks/transformers_reference.py --model deformable-detr --image-size "$height" \
      --image-width "$width" --batch-size $batch "${flags[@]}" --device "$device" --precision $precision --iterations "$iterations" \
      --threads "$(nproc)" >"$theirs" || { status=1; continue; }
    "$python" - "$ours" "$theirs" "$mode" "$precision" <<'PY'
import json, sys
ours = json.load(open(sys.argv[1]))
theirs = json.loads(open(sys.argv[2]).read().strip().splitlines()[-1])
print(f"{sys.argv[3]:9} {sys.argv[4]}: ours {ours['latency_ms_p50']:.1f} ms, transformers {theirs['latency_ms_p50']:.1f} ms, "
      f"ratio {theirs['latency_ms_p50'] / ours['latency_ms_p50']:.2f}x (goal 1.5x); ours peak GPU {ours.get('gpu_peak_allocated_mib', 0):.0f} MiB")
PY
  done
done
echo "gpu-check: $([[ $status == 0 ]] && echo passed || echo FAILED) in $SECONDS s"
exit $status
