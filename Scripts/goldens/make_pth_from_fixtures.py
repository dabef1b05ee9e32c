"""Writes .pth round-trip fixtures of `detr convert` from the official-code fixtures that the parity tests use:
their weights (made by the official code: see each fixture's meta.json) saved with torch.save in the container
each repository's training writes, so that the Swift tests can check that `detr convert` of a real .pth gives
exactly the weights the parity tests prove equal to the official model.

  smca.pth         gaopengcuhk/SMCA-DETR (type3, the released models' scale), DETR's container: {"model", "optimizer",
                   "lr_scheduler", "epoch", "args": argparse.Namespace}; from Tests/DetectorsTests/Fixtures/smca_official
  dino.pth         detrex's DINO, detectron2's container {"model", "iteration"}, the heads under their second names
                   too, sharing storage as in the live model; from dino_detrex
  retinanet.pth    torchvision's RetinaNet: a bare state dict (torchvision's released files are); from retinanet_torchvision
  dsa.pth          the DSA authors' MMDetection fork: {"meta" (with CLASSES, a tuple), "state_dict", "optimizer"}; from dsa_official

The int8 fixtures hold each weight as round(64 · w): SMCA and DINO are saved as bfloat16, which holds those values
exactly at half the size of float32 (the converter casts to float32, as load_state_dict does).

Run: "$(Scripts/reference-env.sh)" Scripts/goldens/make_pth_from_fixtures.py
Writes Tests/TrainingTests/Fixtures/pth/*.pth and meta.json (this script and the torch version).
"""
import argparse
import json
import pathlib

import torch
from safetensors.torch import load_file

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "Tests/DetectorsTests/Fixtures"
OUT = ROOT / "Tests/TrainingTests/Fixtures/pth"
OUT.mkdir(parents=True, exist_ok=True)


def decoded(name, dtype=torch.bfloat16):
    """A fixture's int8 weights as the float values the official code ran with."""
    return {k: (v.float() / 64).to(dtype) for k, v in load_file(FIXTURES / name / "model.safetensors").items()}


def smca():
    state = decoded("smca_official")  # the base file holds type3's scale projections (point3)
    args = argparse.Namespace(lr=1e-4, batch_size=8, dynamic_scale="type3", num_queries=20, hidden_dim=256, epochs=50)
    torch.save({"model": state, "optimizer": {"state": {}, "param_groups": [{"lr": 1e-4, "params": list(range(3))}]},
                "lr_scheduler": {"step_size": 40, "last_epoch": 49}, "epoch": 49, "args": args}, OUT / "smca.pth")


def dino():
    state = decoded("dino_detrex")
    for key in list(state):  # detrex's decoder names the same head modules a second time
        if key.startswith(("class_embed.", "bbox_embed.")):
            state["transformer.decoder." + key] = state[key]
    torch.save({"model": state, "iteration": 89999}, OUT / "dino.pth")


def retinanet():
    state = load_file(FIXTURES / "retinanet_torchvision/model.safetensors")
    torch.save(state, OUT / "retinanet.pth")


def dsa():
    state = load_file(FIXTURES / "dsa_official/model.safetensors")
    meta = {"mmdet_version": "2.4.0", "CLASSES": tuple(f"class {i}" for i in range(5)), "epoch": 12, "iter": 8000}
    torch.save({"meta": meta, "state_dict": state, "optimizer": {"state": {}, "param_groups": [{"lr": 0.01, "momentum": 0.9}]}},
               OUT / "dsa.pth")


smca()
dino()
retinanet()
dsa()
(OUT / "meta.json").write_text(json.dumps({"made_by": "Scripts/goldens/make_pth_from_fixtures.py", "torch": torch.__version__}, indent=1))
for path in sorted(OUT.iterdir()):
    print(path.name, path.stat().st_size)
