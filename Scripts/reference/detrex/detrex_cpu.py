"""Import first: runs the official detrex / detectron2 sources (un-built, from .venv-detrex/src) on a
CPU-only torch. It puts both source trees on sys.path, makes the CUDA-linked torchvision wheel
importable (tv_cpu_shim), stubs `wandb` (imported by detrex.utils.events), registers an empty
`detrex._C` so that detrex keeps its real MultiScaleDeformableAttention (on CPU tensors it samples
with grid_sample and never calls _C), and turns the hard-coded `.cuda()` / `.to("cuda")` of DINO's
denoising and criterion into no-ops. No numerical code of the reference is changed.
"""
import os
import sys
import types

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(HERE, "..", "..", "..", ".venv-detrex", "src")
for path in (os.path.join(SRC, "detrex"), os.path.join(SRC, "detectron2"), HERE):
    if path not in sys.path:
        sys.path.insert(0, path)

import torch  # noqa: E402

import tv_cpu_shim  # noqa: E402,F401

try:
    import wandb  # noqa: F401
except ImportError:
    sys.path.append(os.path.join(HERE, "_stubs"))

sys.modules.setdefault("detrex._C", types.ModuleType("detrex._C"))

if not torch.cuda.is_available():
    def _is_cuda(device):
        return (isinstance(device, str) and device.startswith("cuda")) or (
            isinstance(device, torch.device) and device.type == "cuda")

    _to = torch.Tensor.to

    def _to_cpu(self, *args, **kwargs):
        args = tuple("cpu" if _is_cuda(a) else a for a in args)
        if _is_cuda(kwargs.get("device")):
            kwargs["device"] = "cpu"
        return _to(self, *args, **kwargs)

    torch.Tensor.to = _to_cpu
    torch.Tensor.cuda = lambda self, *args, **kwargs: self
