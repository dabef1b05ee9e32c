#!/usr/bin/env bash
# Creates (once) and prints the path of a Python environment that runs the official DETR, Conditional DETR
# and Deformable DETR code on the CPU: the SMCA reference environment (Scripts/reference/smca/env.sh: torch
# from the machine's wheel, torchvision 0.28.0) plus the official sources, never committed, under
# .venv-official/src/{detr,ConditionalDETR,Deformable-DETR}:
#   facebookresearch/detr             29901c51d7fe8712168b8d0d64351170bc0f83e0
#   Atten4Vis/ConditionalDETR         8ea7c3f3fff49cd287855d4f13cc12a6066bc8e9
#   fundamentalvision/Deformable-DETR 11169a60c33333af00a4849f1808023eba96a931
# Patched to run offline on a current torchvision: util/misc.py's version tests `float(torchvision.__version__[:3])
# < 0.7` reads "0.2" for 0.28 and imports helpers that no longer exist (made false); models/backbone.py asks for
# ImageNet weights (a download; pretrained=False); Conditional DETR's models/attention.py imports torch's
# _LinearWithBias and torch._overrides behind a version test that is true for torch 2 (the names of torch 1.8 and
# later are imported instead). Deformable DETR's compiled attention op is not built: the
# golden script replaces it with the repository's own pure-PyTorch version (ms_deform_attn_core_pytorch).
#
#   DETR_GIT, CONDITIONAL_DETR_GIT, DEFORMABLE_DETR_GIT: git directories of the repositories; without them each is cloned.
# Used by Scripts/goldens/make_official_pth_fixtures.py.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
python=$("$root/Scripts/reference/smca/env.sh")
src=$root/.venv-official/src
mkdir -p "$src"
fetch() { # name url commit git_dir_override
  local name=$1 url=$2 commit=$3 git_dir=${4:-}
  [ -d "$src/$name" ] && return 0
  if [ -z "$git_dir" ]; then
    git_dir=$src/$name.git
    [ -d "$git_dir" ] || git clone --bare --quiet "$url" "$git_dir" >&2
  fi
  rm -rf "$src/$name.partial" && mkdir -p "$src/$name.partial"
  git --git-dir="$git_dir" archive "$commit" models util | tar x -C "$src/$name.partial"
  sed -i -e "s/float(torchvision.__version__\[:3\]) < 0.7/False/" -e "s/float(torchvision.__version__\[:3\]) < 0.5/False/" "$src/$name.partial/util/misc.py"
  sed -i 's/pretrained=is_main_process()/pretrained=False/' "$src/$name.partial/models/backbone.py"
  if [ -f "$src/$name.partial/models/attention.py" ]; then # Conditional DETR: a class torch renamed in 1.8
    sed -i -e 's/from torch.nn.modules.linear import _LinearWithBias/from torch.nn.modules.linear import NonDynamicallyQuantizableLinear as _LinearWithBias/' \
      -e 's/from torch._overrides import/from torch.overrides import/' "$src/$name.partial/models/attention.py"
    # The query sine embedding hard-codes 128 features per axis (half of the released width 256): a module
    # constant instead, 128 unless a test model of another width sets it.
    sed -i -e 's/^def gen_sineembed_for_position(pos_tensor):/SINE_FEATURES_PER_AXIS = 128\n\n\ndef gen_sineembed_for_position(pos_tensor):/' \
      -e 's/torch.arange(128, dtype=torch.float32, device=pos_tensor.device)/torch.arange(SINE_FEATURES_PER_AXIS, dtype=torch.float32, device=pos_tensor.device)/' \
      -e 's#dim_t = 10000 \*\* (2 \* (dim_t // 2) / 128)#dim_t = 10000 ** (2 * (dim_t // 2) / SINE_FEATURES_PER_AXIS)#' "$src/$name.partial/models/transformer.py"
  fi
  if [ -f "$src/$name.partial/models/deformable_transformer.py" ]; then
    # Two-stage proposals' sine embedding hard-codes 128 features per coordinate (half the released width 256):
    # a module constant instead, 128 unless a test model of another width sets it.
    sed -i -e 's/^class DeformableTransformer(nn.Module):/PROPOSAL_FEATURES_PER_COORDINATE = 128\n\n\nclass DeformableTransformer(nn.Module):/' \
      -e 's/        num_pos_feats = 128$/        num_pos_feats = PROPOSAL_FEATURES_PER_COORDINATE/' "$src/$name.partial/models/deformable_transformer.py"
  fi
  mv "$src/$name.partial" "$src/$name"
}
fetch detr https://github.com/facebookresearch/detr.git 29901c51d7fe8712168b8d0d64351170bc0f83e0 "${DETR_GIT:-}"
fetch ConditionalDETR https://github.com/Atten4Vis/ConditionalDETR.git 8ea7c3f3fff49cd287855d4f13cc12a6066bc8e9 "${CONDITIONAL_DETR_GIT:-}"
fetch Deformable-DETR https://github.com/fundamentalvision/Deformable-DETR.git 11169a60c33333af00a4849f1808023eba96a931 "${DEFORMABLE_DETR_GIT:-}"
echo "$python"
