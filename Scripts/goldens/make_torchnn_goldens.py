"""Writes the golden files of the TorchNN tests from PyTorch's torch.nn and torch.optim.

Run: "$(Scripts/reference-env.sh)" Scripts/goldens/make_torchnn_goldens.py
Metadata records this script and the torch version. Keys are "<case>.<name>".
"""
import json
import math
import pathlib

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

ROOT = pathlib.Path(__file__).resolve().parents[2]
out = {}
meta = {"script": "Scripts/goldens/make_torchnn_goldens.py", "torch": torch.__version__}


def put(prefix, **tensors):
    for key, value in tensors.items():
        out[f"{prefix}.{key}"] = value.detach().contiguous().clone()


def put_state(prefix, module):
    for key, value in module.state_dict().items():
        out[f"{prefix}.state.{key}"] = value.detach().contiguous().clone()


# Initialisation from a seed: the Swift layers draw the same numbers in the same order.
torch.manual_seed(11)
linear = nn.Linear(5, 3)
conv = nn.Conv2d(4, 6, 3, groups=2)
mha_init = nn.MultiheadAttention(8, 2)
put_state("init.linear", linear)
put_state("init.conv", conv)
put_state("init.mha", mha_init)
torch.manual_seed(12)
emb = nn.Embedding(4, 3)
put_state("init.embedding", emb)

# Forward of layers loaded with perturbed weights.
torch.manual_seed(1)


def perturb(module):
    with torch.no_grad():
        for value in module.state_dict().values():
            if value.is_floating_point():
                value.add_(torch.randn_like(value) * 0.1)
    return module


# Multi-head attention: packed and separate projections, with masks, weights and gradients.
mha = perturb(nn.MultiheadAttention(8, 2, dropout=0.0))
q, k = torch.randn(4, 2, 8), torch.randn(6, 2, 8)
v = torch.randn(6, 2, 8)
padding = torch.tensor([[False] * 6, [False] * 4 + [True] * 2])
attn_mask = torch.zeros(4, 6, dtype=torch.bool)
attn_mask[0, 5] = True
q.requires_grad_()
o, wts = mha(q, k, v, key_padding_mask=padding, attn_mask=attn_mask, need_weights=True)
o.pow(2).sum().backward()
put_state("mha", mha)
put("mha", query=q, key=k, value=v, padding=padding, attn_mask=attn_mask, output=o, weights=wts, query_grad=q.grad,
    in_proj_weight_grad=mha.in_proj_weight.grad, out_proj_weight_grad=mha.out_proj.weight.grad)

mha_kv = perturb(nn.MultiheadAttention(8, 4, kdim=5, vdim=3))
k2, v2 = torch.randn(6, 2, 5), torch.randn(6, 2, 3)
o2, w2 = mha_kv(q.detach(), k2, v2, need_weights=True, average_attn_weights=False)
put_state("mha_kv", mha_kv)
put("mha_kv", key=k2, value=v2, output=o2, weights=w2)
out["mha_kv.keys"] = torch.tensor([0])
meta["mha_kv.keys"] = json.dumps(list(mha_kv.state_dict().keys()))

x = torch.randn(2, 4, 5, 6)
bn = perturb(nn.BatchNorm2d(4))
put_state("batchnorm.before", bn)
bn.train()
y1 = bn(x)
y2 = bn(x * 2 + 1)
bn.eval()
y3 = bn(x)
put("batchnorm", x=x, train1=y1, train2=y2, eval=y3)
put_state("batchnorm.after", bn)
meta["batchnorm.keys"] = json.dumps(list(nn.BatchNorm2d(4).state_dict().keys()))

ln = perturb(nn.LayerNorm(6))
gn = perturb(nn.GroupNorm(2, 4))
put_state("layernorm", ln)
put_state("groupnorm", gn)
put("layernorm", output=ln(x))
put("groupnorm", output=gn(x))

# FrozenBatchNorm2d as DETR defines it.
fw, fb, fm, fv = torch.randn(4), torch.randn(4), torch.randn(4), torch.rand(4) + 0.5
scale = fw.reshape(1, -1, 1, 1) * (fv.reshape(1, -1, 1, 1) + 1e-5).rsqrt()
bias = fb.reshape(1, -1, 1, 1) - fm.reshape(1, -1, 1, 1) * scale
put("frozen", weight=fw, bias=fb, running_mean=fm, running_var=fv, output=x * scale + bias)


class DetrMLP(nn.Module):
    def __init__(self, input_dim, hidden_dim, output_dim, num_layers):
        super().__init__()
        self.num_layers = num_layers
        h = [hidden_dim] * (num_layers - 1)
        self.layers = nn.ModuleList(nn.Linear(n, k) for n, k in zip([input_dim] + h, h + [output_dim]))

    def forward(self, x):
        for i, layer in enumerate(self.layers):
            x = F.relu(layer(x)) if i < self.num_layers - 1 else layer(x)
        return x


mlp = perturb(DetrMLP(6, 10, 4, 3))
put_state("mlp", mlp)
put("mlp", output=mlp(x))


# A small model whose state-dict keys and order the Swift module tree must reproduce.
class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU())
        self.head = nn.Linear(4, 2)
        self.scale = nn.Parameter(torch.ones(1))
        self.register_buffer("offset", torch.zeros(2))


meta["tiny.keys"] = json.dumps(list(Tiny().state_dict().keys()))

# Optimizers: fixed gradient sequences, two parameter groups.
torch.manual_seed(5)
p0, p1 = torch.randn(3, 4), torch.randn(5)
grads = [(torch.randn(3, 4), torch.randn(5)) for _ in range(6)]
put("optim", p0=p0, p1=p1, **{f"g{i}_0": g[0] for i, g in enumerate(grads)}, **{f"g{i}_1": g[1] for i, g in enumerate(grads)})


def run(make):
    a, b = nn.Parameter(p0.clone()), nn.Parameter(p1.clone())
    opt = make([a, b])
    for g0, g1 in grads:
        a.grad, b.grad = g0.clone(), g1.clone()
        opt.step()
    return a, b, opt


a, b, opt = run(lambda ps: torch.optim.AdamW([{"params": [ps[0]], "lr": 1e-2, "weight_decay": 1e-2},
                                              {"params": [ps[1]], "lr": 3e-3, "weight_decay": 0.0}], betas=(0.9, 0.999), eps=1e-8))
put("adamw", p0=a, p1=b, exp_avg_0=opt.state[a]["exp_avg"], exp_avg_sq_1=opt.state[b]["exp_avg_sq"])
a, b, opt = run(lambda ps: torch.optim.SGD([{"params": [ps[0]], "lr": 0.1, "weight_decay": 1e-3},
                                            {"params": [ps[1]], "lr": 0.05}], momentum=0.9, dampening=0.1))
put("sgd", p0=a, p1=b, buffer_0=opt.state[a]["momentum_buffer"])
a, b, opt = run(lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True))
put("sgd_nesterov", p0=a, p1=b)

# Gradient clipping.
c0, c1 = nn.Parameter(torch.zeros(3, 4)), nn.Parameter(torch.zeros(5))
c0.grad, c1.grad = grads[0][0] * 3, grads[0][1] * 3
total = torch.nn.utils.clip_grad_norm_([c0, c1], 1.5)
put("clip", g0=grads[0][0] * 3, g1=grads[0][1] * 3, clipped0=c0.grad, clipped1=c1.grad, total=total)

# Learning-rate schedules over 30 steps.
def rates(make):
    param = nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=0.5)
    sched = make(opt)
    values = []
    for _ in range(30):
        values.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return torch.tensor(values, dtype=torch.float64)


S = torch.optim.lr_scheduler
put("schedule", step=rates(lambda o: S.StepLR(o, 7, 0.1)), multistep=rates(lambda o: S.MultiStepLR(o, [5, 12, 20], 0.5)),
    cosine=rates(lambda o: S.CosineAnnealingLR(o, 20, eta_min=0.05)), linear=rates(lambda o: S.LinearLR(o, 0.01, 1.0, 8)))

path = ROOT / "Tests/TorchNNTests/Goldens/layers.safetensors"
save_file(out, str(path), metadata=meta)
print(f"wrote {path} ({len(out)} tensors)")
