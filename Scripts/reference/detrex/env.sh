#!/usr/bin/env bash
# Creates (once) and prints the path of a Python environment that runs the official detrex DINO
# code on the CPU, without building detectron2, detrex or any CUDA op: the reference environment of
# Scripts/reference-env.sh (torch from the machine's wheel) plus detrex's pure-Python dependencies,
# and the two source trees at their pinned commits under .venv-detrex/src (never committed).
#
#   DETREX_GIT / DETECTRON2_GIT: git directories of IDEA-Research/detrex and
#   facebookresearch/detectron2; without them the repositories are cloned from GitHub.
#
# detrex e244e6c3da3e84566728c52c21fb061d23ce0e2f; detectron2 70f454304e1a38378200459dd2dbca0f0f4a5ab4
# (detrex's submodule pin). Used by Scripts/goldens/make_detrex_goldens.py, make_detrex_training_parity_goldens.py and make_init_goldens.py.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
base=$("$root/Scripts/reference-env.sh")
venv=$root/.venv-detrex
detrex_commit=e244e6c3da3e84566728c52c21fb061d23ce0e2f
detectron2_commit=70f454304e1a38378200459dd2dbca0f0f4a5ab4
mkdir -p "$venv/src"
fetch() {  # name, git dir (may be empty), url, commit
  [ -d "$venv/src/$1" ] && return
  local git_dir=$2
  if [ -z "$git_dir" ]; then
    git_dir=$venv/src/$1.git
    [ -d "$git_dir" ] || git clone --bare --quiet "$3" "$git_dir" >&2
  fi
  git --git-dir="$git_dir" archive --prefix="$1/" "$4" | tar x -C "$venv/src"
}
fetch detrex "${DETREX_GIT:-}" https://github.com/IDEA-Research/detrex.git $detrex_commit
fetch detectron2 "${DETECTRON2_GIT:-}" https://github.com/facebookresearch/detectron2.git $detectron2_commit
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" >&2
  # The reference environment's packages (torch, safetensors, scipy) without a second copy.
  "$base" -c 'import site; print(site.getsitepackages()[0])' \
    > "$("$venv/bin/python" -c 'import site; print(site.getsitepackages()[0])')/swift_detr_reference.pth"
  pip="$venv/bin/pip install --quiet --no-deps"
  # torchvision's wheel links CUDA; tv_cpu_shim.py makes its Python parts import (no C++ op is used).
  $pip torchvision==0.28.0 "fvcore==0.1.5.post20221221" "iopath==0.1.9" "omegaconf==2.3.1" "hydra-core==1.3.8" \
    antlr4-python3-runtime==4.9.3 yacs==0.1.8 termcolor==3.3.0 tabulate==0.10.0 cloudpickle==3.1.3 portalocker==4.4.2 \
    timm==1.0.31 einops==0.8.2 opencv-python-headless==5.0.0.93 wheel==0.48.0 >&2
  "$venv/bin/pip" install --quiet --no-deps --no-build-isolation fairscale==0.4.13 >&2
fi
echo "$venv/bin/python"
