#!/usr/bin/env bash
# Creates (once) and prints the path of a throwaway Python environment with the reference libraries:
# torch from the machine's wheel (as Scripts/setup.sh finds it) or PyPI, plus safetensors, numpy,
# scipy, pycocotools, Pillow and transformers (TRANSFORMERS_VERSION, default 5.23.0).
# Used only by the golden and benchmark scripts; `swift test` never needs Python.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=$root/.venv-reference
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import torch, safetensors, numpy, scipy, pycocotools, PIL, transformers' 2>/dev/null; then
  python3 -m venv "$venv" >&2
  wheel=${TORCH_WHEEL:-$(ls /opt/wheels/torch-*+cpu-*.whl 2>/dev/null | sort | tail -n 1 || true)}
  "$venv/bin/pip" install --quiet --upgrade pip >&2
  "$venv/bin/pip" install --quiet "${wheel:-torch==2.13.0}" safetensors numpy scipy pycocotools pillow \
    "transformers==${TRANSFORMERS_VERSION:-5.23.0}" >&2
fi
echo "$venv/bin/python"
