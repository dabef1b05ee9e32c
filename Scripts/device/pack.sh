#!/usr/bin/env bash
# Packs what the GPU check needs into .device/ (ignored by git; name it in the device tool's `carry`):
# `detr` built here in release with the Swift runtime linked statically, the shared libraries it
# loads that a bare GPU machine may lack (image codecs, cairo and theirs; not libtorch, not libctorch,
# which gpu-check.sh builds there against that machine's CUDA libtorch), and, when
# OFFICIAL_DEFORMABLE_DETR names a checkout of fundamentalvision/Deformable-DETR, its CUDA op's
# sources (models/ops/src) for the kernel comparison. Run from anywhere; then on the GPU machine:
# Scripts/device/gpu-check.sh
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
out="$root/.device"
rm -rf "$out" && mkdir -p "$out/lib"
grep -qxF '/.device/' .git/info/exclude 2>/dev/null || echo '/.device/' >>.git/info/exclude
swift build -c release --product detr --static-swift-stdlib >&2
binary=$(swift build -c release --show-bin-path)/detr
cp "$binary" "$out/detr"
strip "$out/detr"
# Every library detr loads except glibc's own and libtorch's (those come from the GPU machine).
ldd "$binary" | awk '/=> \//{print $1, $3}' | while read -r name path; do
  case "$name" in
    libc.so*|libm.so*|libpthread.so*|libdl.so*|librt.so*|ld-linux*|libgcc_s.so*|libstdc++.so*) ;;
    libctorch.so*|libtorch*|libc10*|libgomp*|libcudart*|libnvrtc*|libcublas*|libcudnn*) ;;
    *) cp -L "$path" "$out/lib/$name" ;;
  esac
done
if [[ -n "${OFFICIAL_DEFORMABLE_DETR:-}" ]]; then
  cp -r "$OFFICIAL_DEFORMABLE_DETR/models/ops/src" "$out/official-ops"
fi
du -sh "$out" >&2
echo "packed $(ls "$out/lib" | wc -l) libraries and detr into .device/ ($(du -sm "$out" | cut -f1) MiB; the device tool carries at most 64)" >&2
