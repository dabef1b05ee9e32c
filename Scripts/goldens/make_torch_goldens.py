"""Writes the golden files of the Torch and TorchNN tests from PyTorch itself.

Run: "$(Scripts/reference-env.sh)" Scripts/goldens/make_torch_goldens.py
Each file's metadata records this script and the torch version that produced it. Every case stores
its inputs and PyTorch's outputs under "<case>.<name>" keys; the Swift tests recompute the outputs.
"""
import json
import math
import pathlib

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

ROOT = pathlib.Path(__file__).resolve().parents[2]
torch.manual_seed(20261122)


def metadata(extra=None):
    data = {"script": "Scripts/goldens/make_torch_goldens.py", "torch": torch.__version__}
    data.update(extra or {})
    return data


def rnd(*shape, dtype=torch.float32):
    return torch.randn(*shape, dtype=dtype)


ops = {}


def case(name, **tensors):
    for key, value in tensors.items():
        ops[f"{name}.{key}"] = value.detach().contiguous().clone()


# Element-wise binary with broadcasting.
a, b = rnd(2, 3, 1), rnd(4)
case("add", a=a, b=b, out=a + b)
case("sub", a=a, b=b, out=a - b)
case("mul", a=a, b=b, out=a * b)
case("div", a=a, b=b, out=a / b)
case("pow", a=a.abs() + 0.5, b=b, out=(a.abs() + 0.5) ** b)
case("maximum", a=a, b=b, out=torch.maximum(a, b))
case("minimum", a=a, b=b, out=torch.minimum(a, b))
case("atan2", a=a, b=b, out=torch.atan2(a, b))
case("remainder", a=a * 3, b=b, out=torch.remainder(a * 3, b))
case("floor_divide", a=a * 3, b=b, out=torch.div(a * 3, b, rounding_mode="floor"))
case("scalar_float", a=a, out=(a * 2.5 + 1.5) / 4.0 - 0.25)
case("scalar_reverse", a=a, out=(3.0 - a) * (2.0 / (a.abs() + 1)))
ints = torch.randint(-5, 5, (3, 4))
case("scalar_int", a=ints, out=ints * 3 + 2)
case("lt", a=a, b=b, out=a < b)
case("ge_scalar", a=a, out=a >= 0.1)
case("logical", a=a > 0, b=b > 0, out=torch.logical_xor(torch.logical_and(a > 0, b > 0), torch.logical_or(a > 0, ~(b > 0))))

# Unary math.
x = rnd(3, 5) * 2
unary = {
    "exp": torch.exp(x), "log": torch.log(x.abs() + 0.1), "sqrt": torch.sqrt(x.abs()), "rsqrt": torch.rsqrt(x.abs() + 0.1),
    "abs": x.abs(), "sigmoid": torch.sigmoid(x), "tanh": torch.tanh(x), "relu": torch.relu(x), "gelu": F.gelu(x),
    "gelu_tanh": F.gelu(x, approximate="tanh"), "sin": torch.sin(x), "cos": torch.cos(x), "floor": torch.floor(x),
    "ceil": torch.ceil(x), "round": torch.round(x), "sign": torch.sign(x), "log1p": torch.log1p(x.abs()), "expm1": torch.expm1(x),
    "reciprocal": torch.reciprocal(x), "erf": torch.erf(x), "atan": torch.atan(x), "silu": F.silu(x), "square": torch.square(x),
    "clamp": x.clamp(-0.5, 0.5), "inverse_sigmoid": None,
}
xs = torch.sigmoid(x)
unary["inverse_sigmoid"] = torch.log(xs.clamp(min=1e-5) / (1 - xs).clamp(min=1e-5))
ops["unary.x"] = x
ops["unary.sigmoid_x"] = xs
for name, value in unary.items():
    ops[f"unary.{name}"] = value

# Reductions and along-dim ops.
r = rnd(3, 4, 5)
case("reduce", x=r, sum_1=r.sum(1), sum_02_keep=r.sum((0, 2), keepdim=True), mean=r.mean(), mean_2=r.mean(-1),
     amax_02=r.amax((0, 2)), amin_1=r.amin(1), prod_2=r.prod(2), logsumexp_1=torch.logsumexp(r, 1),
     var_1=r.var(1), var_biased=r.var(1, unbiased=False), std_all=r.std(), norm_1=r.norm(2, dim=1), norm_l1=r.norm(1),
     max_1_values=r.max(1).values, max_1_indices=r.max(1).indices, argmax_2=r.argmax(2), argmin=r.argmin(),
     softmax_1=r.softmax(1), log_softmax_2=r.log_softmax(2), cumsum_1=r.cumsum(1))
t = rnd(4, 6)
top = t.topk(3, dim=-1)
srt = t.sort(dim=0, descending=True, stable=True)
u = torch.tensor([3, 1, 2, 3, 3, 0, 1, 7])
uv, ui, uc = torch.unique(u, sorted=True, return_inverse=True, return_counts=True)
case("select_ops", x=t, topk_values=top.values, topk_indices=top.indices, sort_values=srt.values, sort_indices=srt.indices,
     nonzero=(t > 0.5).nonzero())
case("unique", x=u, values=uv, inverse=ui, counts=uc)

# Linear algebra.
m1, m2, m3 = rnd(2, 3, 4), rnd(4, 5), rnd(2, 4, 6)
case("matmul", a=m1, b=m2, out=m1 @ m2)
case("bmm", a=m1, b=m3, out=torch.bmm(m1, m3))
case("mm", a=m1[0], b=m2, out=m1[0] @ m2)

# Shapes.
s = rnd(2, 3, 4)
pieces = s.split(2, dim=2)
chunks = s.chunk(2, dim=1)
case("shape", x=s, permute=s.permute(2, 0, 1), transpose=s.transpose(0, 2).contiguous(), flatten=s.flatten(1),
     expand=s[:, :1].expand(2, 5, 4), repeat=s.repeat(1, 2, 1), cat=torch.cat([s, s * 2], 1), stack=torch.stack([s, -s], 3),
     split0=pieces[0], split1=pieces[1], chunk0=chunks[0], chunk1=chunks[1], flip=s.flip(0, 2), pad=F.pad(s, (1, 2, 0, 1), value=0.5),
     tril=s[0].tril(), triu=s[0].triu(1))

# Indexing.
g = rnd(4, 5, 6)
idx = torch.tensor([3, 0, 3])
mask = g[:, :, 0] > 0
gather_index = torch.randint(0, 5, (4, 3, 6))
put = g.clone()
put[torch.tensor([0, 2]), torch.tensor([1, 4])] = torch.full((6,), 9.0)
sliced = g.clone()
sliced[1:3, ::2, 4] = -1.0
case("index", x=g, basic=g[1:, ::2, 0], basic_neg=g[-1, 1:-1, ..., None], index_select=g.index_select(1, idx),
     advanced=g[idx, :, torch.tensor([1, 2, 5])], mask=mask, masked=g[mask], gather_index=gather_index,
     gather=g.gather(1, gather_index), scatter=torch.zeros(4, 5, 6).scatter(1, gather_index, g[:, :3]),
     scatter_add=torch.zeros(4, 5, 6).scatter_add(1, gather_index, g[:, :3]), masked_fill=g.masked_fill(g > 1, -7.0),
     masked_select=g.masked_select(g > 1), where=torch.where(g > 0, g, g * 0.1), index_put=put, slice_assign=sliced)

# Neural-network functions.
img = rnd(2, 4, 9, 11)
w = rnd(6, 2, 3, 3)
bias = rnd(6)
lin_w, lin_b = rnd(7, 11), rnd(7)
grid = torch.rand(2, 5, 7, 2) * 2.4 - 1.2
case("nn", x=img, conv_w=w, conv_b=bias, conv=F.conv2d(img, w, bias, stride=(2, 1), padding=(1, 2), dilation=(2, 1), groups=2),
     lin_w=lin_w, lin_b=lin_b, linear=F.linear(img, lin_w, lin_b),
     max_pool=F.max_pool2d(img, 3, 2, 1), avg_pool=F.avg_pool2d(img, 2, ceil_mode=True, count_include_pad=False),
     adaptive=F.adaptive_avg_pool2d(img, (3, 4)), nearest=F.interpolate(img, size=(5, 17), mode="nearest"),
     bilinear=F.interpolate(img, size=(13, 6), mode="bilinear", align_corners=False),
     bilinear_aligned=F.interpolate(img, size=(13, 6), mode="bilinear", align_corners=True),
     bicubic=F.interpolate(img, size=(13, 6), mode="bicubic", align_corners=False),
     grid=grid, grid_bilinear=F.grid_sample(img, grid, mode="bilinear", padding_mode="zeros", align_corners=False),
     grid_nearest_border=F.grid_sample(img, grid, mode="nearest", padding_mode="border", align_corners=True),
     layer_norm_w=rnd(11), layer_norm_b=rnd(11))
ops["nn.layer_norm"] = F.layer_norm(img, (11,), ops["nn.layer_norm_w"], ops["nn.layer_norm_b"], 1e-5)
ops["nn.group_norm"] = F.group_norm(img, 2, ops["nn.layer_norm_w"][:4], ops["nn.layer_norm_b"][:4], 1e-5)
rm, rv = torch.zeros(4), torch.ones(4)
ops["nn.batch_norm_train"] = F.batch_norm(img, rm, rv, ops["nn.layer_norm_w"][:4], ops["nn.layer_norm_b"][:4], True, 0.1, 1e-5)
ops["nn.batch_norm_running_mean"], ops["nn.batch_norm_running_var"] = rm.clone(), rv.clone()
ops["nn.batch_norm_eval"] = F.batch_norm(img, rm, rv, None, None, False, 0.1, 1e-5)

logits, target_bin = rnd(5, 3), torch.rand(5, 3)
classes, labels, class_w = rnd(6, 4), torch.tensor([0, 3, 1, 3, 2, 0]), torch.tensor([1.0, 0.5, 2.0, 0.1])
emb_w, emb_i = rnd(10, 3), torch.tensor([[1, 9], [0, 1]])
case("loss", logits=logits, targets=target_bin, pos_weight=torch.tensor([1.0, 2.0, 0.5]),
     bce=F.binary_cross_entropy_with_logits(logits, target_bin), bce_none_pos=F.binary_cross_entropy_with_logits(
         logits, target_bin, pos_weight=torch.tensor([1.0, 2.0, 0.5]), reduction="none"),
     classes=classes, labels=labels, class_weights=class_w, cross_entropy=F.cross_entropy(classes, labels, class_w),
     cross_entropy_sum=F.cross_entropy(classes, labels, reduction="sum"),
     l1=F.l1_loss(logits, target_bin), l1_sum=F.l1_loss(logits, target_bin, reduction="sum"), mse=F.mse_loss(logits, target_bin),
     smooth_l1=F.smooth_l1_loss(logits, target_bin, beta=0.5), emb_w=emb_w, emb_i=emb_i, embedding=F.embedding(emb_i, emb_w))

# Autograd through library ops.
ga = rnd(3, 4).requires_grad_()
gw = rnd(4)
(torch.sigmoid(ga) * gw).pow(2).sum().backward()
gi = rnd(1, 2, 5, 5).requires_grad_()
gg = (torch.rand(1, 3, 4, 2) * 2.2 - 1.1).requires_grad_()
F.grid_sample(gi, gg, align_corners=False).pow(2).sum().backward()
gc_x, gc_w = rnd(1, 2, 6, 6).requires_grad_(), rnd(3, 2, 3, 3).requires_grad_()
F.conv2d(gc_x, gc_w, padding=1).tanh().sum().backward()
case("grad", a=ga, w=gw, a_grad=ga.grad, gi=gi, gg=gg, gi_grad=gi.grad, gg_grad=gg.grad, cx=gc_x, cw=gc_w, cx_grad=gc_x.grad,
     cw_grad=gc_w.grad)

# Seeded random numbers from the same libtorch.
torch.manual_seed(7)
r1, r2, r3 = torch.rand(5), torch.randn(2, 3), torch.randint(0, 10, (6,))
gen = torch.Generator().manual_seed(3)
r4 = torch.randn(4, generator=gen)
r5 = torch.randperm(8, generator=gen)
case("random", rand=r1, randn=r2, randint=r3, generator_randn=r4, generator_randperm=r5)

out = ROOT / "Tests/TorchTests/Goldens/ops.safetensors"
save_file(ops, str(out), metadata=metadata())
print(f"wrote {out} ({len(ops)} tensors)")

# A file with every dtype, written by the reference safetensors library, for our reader.
dtypes = {
    "float32": torch.arange(6, dtype=torch.float32).reshape(2, 3) / 3, "float64": torch.arange(4, dtype=torch.float64) / 7,
    "float16": torch.tensor([0.5, -2.25, 1e-3], dtype=torch.float16), "bfloat16": torch.tensor([1.5, -3.0, 1e20], dtype=torch.bfloat16),
    "int64": torch.tensor([-(2**40), 0, 2**40]), "int32": torch.tensor([[-7, 8]], dtype=torch.int32),
    "uint8": torch.tensor([0, 255, 17], dtype=torch.uint8), "bool": torch.tensor([True, False, True]),
    "int8": torch.tensor([-128, 127], dtype=torch.int8), "int16": torch.tensor([-300, 300], dtype=torch.int16),
    "empty": torch.zeros(0, 3), "scalar": torch.tensor(2.5),
}
out = ROOT / "Tests/TorchTests/Goldens/dtypes.safetensors"
save_file(dtypes, str(out), metadata=metadata({"note": "one tensor per dtype"}))
print(f"wrote {out}")
