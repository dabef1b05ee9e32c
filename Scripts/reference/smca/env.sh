#!/usr/bin/env bash
# Creates (once) and prints the path of a Python environment that runs the official SMCA-DETR code
# (gaopengcuhk/SMCA-DETR e4df3ab2081571a016c82794a85abd2342a2fc1b) on the CPU: the reference
# environment of Scripts/reference-env.sh (torch from the machine's wheel) plus torchvision 0.28.0
# without its dependencies (its compiled ops are not used; tv_cpu_shim.py makes it import), and the
# official sources, never committed: the single-scale model under .venv-smca/src/SMCA-DETR, the
# released multi-scale model (Multi_scale_SMCA.zip) under .venv-smca/src/SMCA-multi-scale. Patched
# to run offline on a current torchvision:
#   util/misc.py       the version test `float(torchvision.__version__[:3]) < 0.7` reads "0.2" for
#                      0.28 and imports helpers that no longer exist: it is made false;
#   models/backbone.py asks torchvision for ImageNet weights (a download): pretrained=False; the
#                      multi-scale copy also stops at a leftover `pdb.set_trace()`: removed;
#   models/detr.py     (multi-scale) imports `transformer.py`, the variant with separate cross-scale
#                      convolutions; the released 44.4 AP model is `transformer_44_dot_4.py`. Its
#                      forward repeats layer 0's centres for a hard-coded 6 decoder layers: the count
#                      of layers instead, the same for the released model, so that a test model may
#                      have fewer.
#
#   SMCA_GIT: a git directory of gaopengcuhk/SMCA-DETR; without it the repository is cloned.
# Used by Scripts/goldens/make_smca_goldens.py and Scripts/benchmarks/smca_reference.py.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
base=$("$root/Scripts/reference-env.sh")
venv=$root/.venv-smca
commit=e4df3ab2081571a016c82794a85abd2342a2fc1b
mkdir -p "$venv/src"
if [ ! -d "$venv/src/SMCA-DETR" ]; then
  git_dir=${SMCA_GIT:-}
  if [ -z "$git_dir" ]; then
    git_dir=$venv/src/SMCA-DETR.git
    [ -d "$git_dir" ] || git clone --bare --quiet https://github.com/gaopengcuhk/SMCA-DETR.git "$git_dir" >&2
  fi
  mkdir -p "$venv/src/SMCA-DETR.partial"
  git --git-dir="$git_dir" archive "$commit" models util | tar x -C "$venv/src/SMCA-DETR.partial"
  sed -i 's/float(torchvision.__version__\[:3\]) < 0.7/False/' "$venv/src/SMCA-DETR.partial/util/misc.py"
  sed -i 's/pretrained=is_main_process()/pretrained=False/' "$venv/src/SMCA-DETR.partial/models/backbone.py"
  mv "$venv/src/SMCA-DETR.partial" "$venv/src/SMCA-DETR"
fi
if [ ! -d "$venv/src/SMCA-multi-scale" ]; then
  rm -rf "$venv/src/SMCA-multi-scale.partial" && mkdir -p "$venv/src/SMCA-multi-scale.partial"
  git --git-dir="${SMCA_GIT:-$venv/src/SMCA-DETR.git}" show "$commit:Multi_scale_SMCA.zip" > "$venv/src/Multi_scale_SMCA.zip"
  (cd "$venv/src/SMCA-multi-scale.partial" && unzip -q ../Multi_scale_SMCA.zip 'DMS-MH-GMCA-main_very_important/models/*' \
    'DMS-MH-GMCA-main_very_important/util/*')
  ms=$venv/src/SMCA-multi-scale.partial/DMS-MH-GMCA-main_very_important
  sed -i 's/float(torchvision.__version__\[:3\]) < 0.7/False/' "$ms/util/misc.py"
  sed -i 's/pretrained=is_main_process()/pretrained=False/' "$ms/models/backbone.py"
  sed -i 's/^\(\s*\)pdb.set_trace()/\1pass/' "$ms/models/backbone.py"
  sed -i 's/^from .transformer import build_transformer/from .transformer_44_dot_4 import build_transformer/' "$ms/models/detr.py"
  sed -i 's/points = points\[0, :, :, :\].unsqueeze(0).repeat(6, 1, 1, 1)/points = points[0, :, :, :].unsqueeze(0).repeat(hs.shape[0], 1, 1, 1)/' \
    "$ms/models/detr.py"
  mv "$ms" "$venv/src/SMCA-multi-scale" && rm -rf "$venv/src/SMCA-multi-scale.partial" "$venv/src/Multi_scale_SMCA.zip"
fi
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" >&2
  # The reference environment's packages (torch, safetensors, scipy) without a second copy.
  "$base" -c 'import site; print(site.getsitepackages()[0])' \
    > "$("$venv/bin/python" -c 'import site; print(site.getsitepackages()[0])')/swift_detr_reference.pth"
  "$venv/bin/pip" install --quiet --no-deps torchvision==0.28.0 >&2
fi
echo "$venv/bin/python"
