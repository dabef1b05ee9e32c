#!/usr/bin/env bash
# Packs what the GPU check needs, for the device tool to carry: `detr` built here in release with the
# Swift runtime linked statically and stripped, the shared libraries it loads that a bare GPU machine
# may lack (image codecs, cairo and theirs; not libtorch or libctorch, which gpu-check.sh builds there
# against that machine's CUDA libtorch) and, when OFFICIAL_DEFORMABLE_DETR names a checkout of
# fundamentalvision/Deformable-DETR, its CUDA op's sources (models/ops/src) for the kernel comparison.
#
# The pack (xz, about 18 MB: the static Foundation holds ICU's 34 MB of data) and the working tree
# (about 53 MB of tracked files, test fixtures mostly) do not fit one call's 64 MiB, so the pack is
# split in two parts, .device-1/ and .device-2/ (ignored by git). Two calls on one warm machine:
#   run(carry: [".device-1"], command: "true")
#   run(carry: [".device-2"], command: "Scripts/device/gpu-check.sh", timeout_s: 600)
# (an ignored folder carried once stays there for the next call on the same machine); gpu-check.sh
# joins the parts and says so when one is missing.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
staging=$(mktemp -d)
trap 'rm -rf "$staging"' EXIT
mkdir -p "$staging/pack/lib"
swift build -c release --product detr --static-swift-stdlib >&2
binary=$(swift build -c release --show-bin-path)/detr
cp "$binary" "$staging/pack/detr"
strip "$staging/pack/detr"
# Every library detr loads except glibc's and the C++ runtime (on every machine) and libtorch's (built there).
ldd "$binary" | awk '/=> \//{print $1, $3}' | while read -r name path; do
  case "$name" in
    libc.so*|libm.so*|libpthread.so*|libdl.so*|librt.so*|ld-linux*|libgcc_s.so*|libstdc++.so*) ;;
    libctorch.so*|libtorch*|libc10*|libgomp*) ;;
    *) cp -L "$path" "$staging/pack/lib/$name" ;;
  esac
done
if [[ -n "${OFFICIAL_DEFORMABLE_DETR:-}" ]]; then
  cp -r "$OFFICIAL_DEFORMABLE_DETR/models/ops/src" "$staging/pack/official-ops"
fi
git rev-parse HEAD >"$staging/pack/commit"
tar -C "$staging" -cf - pack | xz -9e -T2 >"$staging/pack.tar.xz"
rm -rf .device-1 .device-2 && mkdir -p .device-1 .device-2
split -n 2 -d -a 1 "$staging/pack.tar.xz" "$staging/part-"
mv "$staging/part-0" .device-1/pack.part-0
mv "$staging/part-1" .device-2/pack.part-1
tree=$(git ls-files -z | xargs -0 du -cb | tail -1 | cut -f1)
echo "packed detr ($(git rev-parse --short HEAD)), $(ls "$staging/pack/lib" | wc -l) libraries$([[ -d $staging/pack/official-ops ]] && echo ", the official op's sources"):" \
  "$(($(stat -c %s "$staging/pack.tar.xz") / 1048576)) MiB in two parts; each call carries $((tree / 1048576)) MiB of tracked files and one part" >&2
