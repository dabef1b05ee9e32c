"""The shim's CUDA multi-scale deformable attention against the official MultiScaleDeformableAttention op of
fundamentalvision/Deformable-DETR (models/ops, built here with torch's extension builder when its sources are
given) on the same GPU: outputs and gradients (largest difference over max(1, largest magnitude)), and the time of
forward and backward at Deformable DETR's shape for an 800x1333 image (4 levels, 8 heads of 32 channels, 4 points,
300 queries for the decoder and every token for the encoder), fp32 and bf16 inputs (both kernels sample in fp32:
bf16 inputs are cast, as detr does). Without the official sources, only ours is timed, against the composed
grid_sample version. Prints a table; --json writes it.

    python attention_kernels.py [--official DIR] [--json OUT]
"""
import argparse
import json
import os
import shutil
import sys

import torch
import torch.nn.functional as F
from torch.utils.cpp_extension import load

parser = argparse.ArgumentParser()
parser.add_argument("--official", help="the official models/ops/src folder")
parser.add_argument("--json")
parser.add_argument("--iterations", type=int, default=50)
args = parser.parse_args()
here = os.path.dirname(os.path.abspath(__file__))
shim = os.path.join(here, "..", "..", "Shim", "src")
build = "/tmp/attention-kernels"
os.makedirs(build, exist_ok=True)
flags = ["-O3", "--expt-relaxed-constexpr"]
ours = load("ctorch_attention", [os.path.join(here, "attention_binding.cpp"), os.path.join(shim, "deformable_attention_cuda.cu")],
            extra_include_paths=[shim], extra_cuda_cflags=flags, build_directory=build, verbose=False)
official = None
if args.official and os.path.isdir(args.official):
    try:
        # The op as released dispatches on `value.type()`, which current torch no longer converts to a scalar
        # type: a copy with `value.scalar_type()` there (the one change transformers' and detrex's copies make;
        # no computation changes).
        src = build + "-official-src"
        shutil.rmtree(src, ignore_errors=True)
        shutil.copytree(args.official, src)
        kernel = os.path.join(src, "cuda", "ms_deform_attn_cuda.cu")
        text = open(kernel).read()
        open(kernel, "w").write(text.replace("AT_DISPATCH_FLOATING_TYPES(value.type(),", "AT_DISPATCH_FLOATING_TYPES(value.scalar_type(),"))
        os.makedirs(build + "-official", exist_ok=True)
        official = load("MultiScaleDeformableAttention", [os.path.join(src, "vision.cpp"), os.path.join(src, "cpu", "ms_deform_attn_cpu.cpp"),
                        os.path.join(src, "cuda", "ms_deform_attn_cuda.cu")], extra_include_paths=[src], extra_cflags=["-DWITH_CUDA"],
                        extra_cuda_cflags=["-DWITH_CUDA", "-DCUDA_HAS_FP16=1", "-D__CUDA_NO_HALF_OPERATORS__", "-D__CUDA_NO_HALF_CONVERSIONS__",
                                           "-D__CUDA_NO_HALF2_OPERATORS__"], build_directory=build + "-official", verbose=False)
        print("the official op built (dispatch adapted to the current torch API)")
    except Exception as error:  # still failing: say so, time ours alone
        print(f"the official op did not build: {str(error).splitlines()[-1][:300]}")
else:
    print("no official op sources given (pack.sh with OFFICIAL_DEFORMABLE_DETR): ours against the composed version only")

device = torch.device("cuda")
shapes = [(100, 167), (50, 84), (25, 42), (13, 21)]  # an 800x1333 image at strides 8..64
heights, widths = [h for h, _ in shapes], [w for _, w in shapes]
starts = [0]
for h, w in shapes[:-1]:
    starts.append(starts[-1] + h * w)
tokens = sum(h * w for h, w in shapes)
heads, channels, points, batch = 8, 32, 4, 1


def composed(value, locations, weights):
    outputs = []
    for level, (h, w) in enumerate(shapes):
        v = value[:, starts[level]:starts[level] + h * w].flatten(2).transpose(1, 2).reshape(batch * heads, channels, h, w)
        grid = (locations[:, :, :, level] * 2 - 1).transpose(1, 2).flatten(0, 1)
        outputs.append(F.grid_sample(v, grid, mode="bilinear", padding_mode="zeros", align_corners=False))
    queries = locations.size(1)
    stacked = torch.stack(outputs, dim=-2).flatten(-2)  # [B*M, D, Q, L*P]
    w = weights.transpose(1, 2).reshape(batch * heads, 1, queries, -1)
    return (stacked * w).sum(-1).view(batch, heads * channels, queries).transpose(1, 2)


def timed(function, iterations):
    for _ in range(3):
        function()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(iterations):
        function()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / iterations


def difference(a, b):
    a, b = a.double(), b.double()
    return ((a - b).abs().max() / max(1.0, b.abs().max().item())).item()


rows = []
for name, queries in [("decoder", 300), ("encoder", tokens)]:
    for dtype in [torch.float32, torch.bfloat16]:
        g = torch.Generator(device="cpu").manual_seed(0)
        value = torch.randn(batch, tokens, heads, channels, generator=g).to(device, dtype)
        locations = (torch.rand(batch, queries, heads, len(shapes), points, 2, generator=g) * 1.2 - 0.1).to(device, dtype)
        weights = torch.rand(batch, queries, heads, len(shapes), points, generator=g).softmax(-1).to(device, dtype)
        grad = torch.randn(batch, queries, heads, channels, generator=g).to(device, dtype)
        v, l, w, gr = (t.float().contiguous() for t in (value, locations, weights, grad))
        row = {"case": name, "queries": queries, "inputs": str(dtype).replace("torch.", "")}
        ours_out = ours.forward(v, heights, widths, starts, l, w)
        ours_grads = ours.backward(v, heights, widths, starts, l, w, gr)
        row["ours_forward_ms"] = timed(lambda: ours.forward(v, heights, widths, starts, l, w), args.iterations)
        row["ours_backward_ms"] = timed(lambda: ours.backward(v, heights, widths, starts, l, w, gr), args.iterations)
        vc, lc, wc = (t.clone().requires_grad_() for t in (v, l, w))
        reference = composed(vc, lc, wc)
        reference.backward(gr.flatten(2))
        row["vs_composed"] = max(difference(ours_out.flatten(2), reference.detach()), difference(ours_grads[0], vc.grad),
                                 difference(ours_grads[1], lc.grad), difference(ours_grads[2], wc.grad))
        if official is not None:
            shape_tensor = torch.tensor(shapes, device=device, dtype=torch.long)
            start_tensor = torch.tensor(starts, device=device, dtype=torch.long)
            step = 64
            their_out = official.ms_deform_attn_forward(v, shape_tensor, start_tensor, l, w, step)
            their_grads = official.ms_deform_attn_backward(v, shape_tensor, start_tensor, l, w, gr.flatten(2).contiguous(), step)
            row["official_forward_ms"] = timed(lambda: official.ms_deform_attn_forward(v, shape_tensor, start_tensor, l, w, step), args.iterations)
            row["official_backward_ms"] = timed(
                lambda: official.ms_deform_attn_backward(v, shape_tensor, start_tensor, l, w, gr.flatten(2).contiguous(), step), args.iterations)
            row["vs_official"] = max(difference(ours_out.flatten(2), their_out), *(difference(a, b) for a, b in zip(ours_grads, their_grads)))
            row["forward_ratio"] = row["official_forward_ms"] / row["ours_forward_ms"]
            row["backward_ratio"] = row["official_backward_ms"] / row["ours_backward_ms"]
        rows.append(row)
        print(json.dumps(row))
failed = [r for r in rows if r["vs_composed"] > 1e-4 or r.get("vs_official", 0) > 1e-4]
print(f"{len(rows) - len(failed)} of {len(rows)} cases within 1e-4 of the composed version" + (" and the official op" if official else ""))
if args.json:
    json.dump({"gpu": torch.cuda.get_device_name(), "torch": torch.__version__, "rows": rows}, open(args.json, "w"), indent=2)
sys.exit(1 if failed else 0)
