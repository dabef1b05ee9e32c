"""Writes the PyTorch checkpoint files that test swift-detr's reader (Sources/Torch/PyTorchFiles), with
torch itself: every element type, strided and shared storages, nested containers, both torch.save formats,
and files that must be refused.

Run: "$(Scripts/reference-env.sh)" Scripts/goldens/make_pytorch_file_goldens.py
Writes Tests/TorchTests/Goldens/pytorch_files/: *.pth and expected.safetensors (the tensors the reader must
produce, by "<file>.<key>"), whose metadata names this script and the torch version.
"""
import argparse
import collections
import os
import pathlib

import torch
from safetensors.torch import save_file

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "Tests/TorchTests/Goldens/pytorch_files"
OUT.mkdir(parents=True, exist_ok=True)
torch.manual_seed(20261127)

base = torch.randn(4, 6)
state = collections.OrderedDict()
state["weight"] = torch.randn(3, 5)
state["transposed"] = base.t()  # strides (1, 6)
state["row"] = base[2]  # offset 12 into a shared storage
state["half"] = torch.randn(7).half()
state["bfloat"] = torch.randn(2, 2).bfloat16()
state["double"] = torch.randn(3, dtype=torch.float64)
state["long"] = torch.arange(-3, 3, dtype=torch.int64)
state["int"] = torch.tensor([1, -2, 3], dtype=torch.int32)
state["short"] = torch.tensor([7, -8], dtype=torch.int16)
state["char"] = torch.tensor([-1, 2], dtype=torch.int8)
state["byte"] = torch.tensor([0, 255], dtype=torch.uint8)
state["bool"] = torch.tensor([True, False, True])
state["scalar"] = torch.tensor(2.5)
state["empty"] = torch.zeros(0, 3)
state["bn.num_batches_tracked"] = torch.tensor(17)
state._metadata = collections.OrderedDict({"": {"version": 1}})  # as nn.Module.state_dict() sets it

expected = {}
def record(name, tensors):
    for key, value in tensors.items():
        expected[f"{name}.{key}"] = value.contiguous().clone()

# A bare state dict in the zip format, and the same in the legacy format of torch < 1.6.
torch.save(state, OUT / "state_dict.pth")
torch.save(state, OUT / "state_dict_legacy.pth", _use_new_zipfile_serialization=False)
record("state_dict", state)

# A training checkpoint as the official DETR-family scripts write it: args is an argparse.Namespace,
# the optimizer state is keyed by integers, the parameters are nn.Parameters.
linear = torch.nn.Linear(3, 2)
optimizer = torch.optim.AdamW(linear.parameters(), lr=1e-4)
linear(torch.randn(4, 3)).sum().backward()
optimizer.step()
training = {
    "model": linear.state_dict(),
    "optimizer": optimizer.state_dict(),
    "lr_scheduler": {"step_size": 40, "gamma": 0.1, "last_epoch": 3},
    "epoch": 3,
    "args": argparse.Namespace(lr=1e-4, backbone="resnet50", dilation=False, num_queries=100, lr_drop=40, nested=[1, (2.5, "x")]),
    "parameter": torch.nn.Parameter(torch.ones(2)),
    "bytes": b"\x00\xffab",
    "big": 2 ** 70,
    "negative": -5,
    "misc": {1: None, "set": {3}},
}
torch.save(training, OUT / "training.pth")
torch.save(training, OUT / "training_legacy.pth", _use_new_zipfile_serialization=False)
record("training", training["model"])


class RunsCode:
    """Unpickling this calls os.system: a reader that executes pickles would create the marker file."""
    def __reduce__(self):
        return (os.system, ("touch swift-detr-pickle-executed",))


torch.save({"model": state, "payload": RunsCode()}, OUT / "runs_code.pth")


class Custom:
    def __init__(self):
        self.value = 3


torch.save({"model": state, "object": Custom()}, OUT / "custom_object.pth")
torch.save([state["weight"], 3], OUT / "list.pth")
(OUT / "not_a_checkpoint.pth").write_bytes(b"this is a text file, not a checkpoint\n")
data = (OUT / "state_dict.pth").read_bytes()
(OUT / "truncated.pth").write_bytes(data[: len(data) // 2])
torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), OUT / "torchscript.pt")

save_file(expected, OUT / "expected.safetensors", metadata={"script": "Scripts/goldens/make_pytorch_file_goldens.py", "torch": torch.__version__})
print("wrote", sorted(p.name for p in OUT.iterdir()))
