#!/usr/bin/env bash
# Creates (once) and prints the path of a Python environment that runs the authors' DSA code
# (chenzuge1/DSANet 70ade587ba13b65e503cb7a71c1875dde094575b, a fork of mmdetection 2.4.0; the code is
# only on its `master` branch) on the CPU: the reference environment of Scripts/reference-env.sh (torch
# from the machine's wheel) plus torchvision 0.28.0 without its dependencies (its compiled ops are not
# used; Scripts/reference/detrex/tv_cpu_shim.py makes it import) and the pure-Python mmcv 1.1.6
# (mmcv-full has no wheel for this Python and torch; mmcv_ext_stub.py stands in for its two compiled
# ops on this path, NMS and the sigmoid focal loss, in plain torch). The sources go to
# .venv-dsa/src/DSANet, never committed, unmodified.
#
#   DSA_GIT: a git directory of chenzuge1/DSANet; without it the repository is cloned.
# Used by Scripts/goldens/make_dsa_goldens.py and make_retinanet_end_to_end_goldens.py.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
base=$("$root/Scripts/reference-env.sh")
venv=$root/.venv-dsa
commit=70ade587ba13b65e503cb7a71c1875dde094575b
mkdir -p "$venv/src"
if [ ! -d "$venv/src/DSANet" ]; then
  git_dir=${DSA_GIT:-}
  if [ -z "$git_dir" ]; then
    git_dir=$venv/src/DSANet.git
    [ -d "$git_dir" ] || git clone --bare --quiet https://github.com/chenzuge1/DSANet.git "$git_dir" >&2
  fi
  rm -rf "$venv/src/DSANet.partial" && mkdir -p "$venv/src/DSANet.partial"
  git --git-dir="$git_dir" archive "$commit" mmdet configs | tar x -C "$venv/src/DSANet.partial"
  mv "$venv/src/DSANet.partial" "$venv/src/DSANet"
fi
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import mmcv, cv2' 2>/dev/null || ! "$venv/bin/pip" show -q torchvision 2>/dev/null; then
  python3 -m venv "$venv" >&2
  # The reference environment's packages (torch, safetensors, scipy) without a second copy.
  "$base" -c 'import site; print(site.getsitepackages()[0])' \
    > "$("$venv/bin/python" -c 'import site; print(site.getsitepackages()[0])')/swift_detr_reference.pth"
  # mmcv 1.1.6's setup.py needs pkg_resources, which newer setuptools dropped.
  "$venv/bin/pip" install --quiet "setuptools<70" wheel >&2
  "$venv/bin/pip" install --quiet --no-cache-dir --no-deps --no-build-isolation mmcv==1.1.6 >&2
  "$venv/bin/pip" install --quiet addict yapf six terminaltables opencv-python-headless >&2
  "$venv/bin/pip" install --quiet --no-deps torchvision==0.28.0 >&2
fi
# MMDetection 2.4.0 itself (pure Python; its sources from the PyPI sdist), for the plain-RetinaNet
# goldens: the fork's FPN and head always carry the DSA and IoU branches.
if [ ! -d "$venv/src/mmdet-2.4.0/mmdet" ]; then
  rm -rf "$venv/src/mmdet-dl" && "$venv/bin/pip" download --quiet --no-deps --no-binary :all: mmdet==2.4.0 -d "$venv/src/mmdet-dl" >&2
  tar xzf "$venv/src/mmdet-dl/mmdet-2.4.0.tar.gz" -C "$venv/src" && rm -rf "$venv/src/mmdet-dl"
fi
echo "$venv/bin/python"
