"""Golden tensors of the official SMCA-DETR (gaopengcuhk/SMCA-DETR e4df3ab), run on the CPU: the
single-scale model (`models/`) for Tests/DetectorsTests/Fixtures/smca_official/, and with
`--variant multi-scale` the released multi-scale model (`Multi_scale_SMCA.zip`,
`transformer_44_dot_4.py`) for Tests/DetectorsTests/Fixtures/smca_multi_scale_official/.

A small model built from the official modules (only sizes change): a torchvision-style ResNet with
one basic block per stage (stem 16, stages 16/32/64/128 channels, frozen batch norm), 1 encoder and 2
decoder layers, feed-forward 32, 5 classes (6 class outputs: SMCA keeps DETR's extra column), 20
queries, dropout 0. The width stays 256 and the heads 8: the official decoder layer hard-codes both.
All four `dynamic_scale` types share every weight but their scale projections (`point3`). Every
weight is perturbed (N(0, 0.02) added; frozen batch-norm statistics random) and then put on a grid of
1/64 in [-127/64, 127/64], so that the fixture stores it exactly as int8 (value · 64); the reference
runs in float32 on those values.

Writes:
  model.safetensors   the type3 model's state dict as int8 · 1/64
  scales.safetensors  the type2 and type4 scale projections (`type2.<key>`, `type4.<key>`), int8 · 1/64
  golden.safetensors  two images of different sizes (float16, normalized, zero padding) and, per type,
                      every decoder layer's logits and boxes, the final layer's matched indices, every
                      loss term (unweighted) and the post-processed detections; for type3 also, for
                      parameters along every path, the norm and the first 2048 entries of the gradient
                      of the weighted total
  meta.json           versions, sizes, image and output sizes, targets, loss weights

The multi-scale model: the same backbone and widths, 1 encoder layer (kernel 7), 2 decoder layers
(built as the 6 its constructor hard-codes, then cut), 100 queries (its post-processing keeps 500
pairs), type3 scales (the only type its code runs). Its scale-selection weights are
image 0's for the whole batch (an official quirk, right for its batch of one per device), so each
image runs alone: `multi.image{0,1}.*` hold each image's logits and boxes of every layer, matches,
loss terms and detections; `gradient.*` the gradients of image 0's weighted total.

Run: "$(Scripts/reference/smca/env.sh)" Scripts/goldens/make_smca_goldens.py [--variant multi-scale]
"""
import argparse
import json
import pathlib
import sys
import types

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "Scripts/reference/detrex"))
import tv_cpu_shim  # noqa: F401,E402  (must precede torchvision)

import torch  # noqa: E402
import torchvision  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from torch import nn  # noqa: E402
from torchvision.models.resnet import BasicBlock  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--variant", choices=["single-scale", "multi-scale"], default="single-scale")
VARIANT = parser.parse_args().variant
SOURCE = ROOT / ".venv-smca/src" / ("SMCA-DETR" if VARIANT == "single-scale" else "SMCA-multi-scale")
sys.path.insert(0, str(SOURCE))
from models.backbone import BackboneBase, FrozenBatchNorm2d, Joiner  # noqa: E402
from models.detr import DETR, PostProcess, SetCriterion  # noqa: E402
from models.matcher import build_matcher  # noqa: E402
from models.position_encoding import PositionEmbeddingSine  # noqa: E402
from util.box_ops import box_cxcywh_to_xyxy  # noqa: E402
from models.transformer import build_transformer as build_single_scale_transformer  # noqa: E402

if VARIANT == "multi-scale":
    from models.transformer_44_dot_4 import build_transformer as build_multi_scale_transformer  # noqa: E402

COMMIT = "e4df3ab2081571a016c82794a85abd2342a2fc1b"
OUT = ROOT / "Tests/DetectorsTests/Fixtures" / ("smca_official" if VARIANT == "single-scale" else "smca_multi_scale_official")
TYPES = ("type1", "type2", "type3", "type4")
CLASSES, QUERIES = 5, 20
MULTI_SCALE_QUERIES = 100  # its post-processing keeps a hard-coded 500 (query, class) pairs
WEIGHTS = {"loss_ce": 2, "loss_bbox": 5, "loss_giou": 2}
GRADIENT_PROBES = (
    "class_embed.weight", "bbox_embed.layers.2.weight", "query_embed.weight", "input_proj.weight",
    "transformer.decoder.layers.0.point1.layers.0.weight", "transformer.decoder.layers.0.point2.weight",
    "transformer.decoder.layers.1.point2.bias", "transformer.decoder.layers.0.point3.weight", "transformer.decoder.layers.1.point3.bias",
    "transformer.decoder.layers.1.multihead_attn.in_proj_weight", "transformer.decoder.layers.0.norm4.weight",
    "transformer.decoder.norm.weight", "transformer.encoder.layers.0.self_attn.in_proj_weight", "backbone.0.body.layer4.0.conv2.weight",
)

MULTI_SCALE_GRADIENT_PROBES = (
    "class_embed.weight", "bbox_embed.layers.2.weight", "query_embed.weight", "input_proj_512.weight", "input_proj_1024.bias",
    "input_proj_2048.weight", "input_proj_2048_3.weight", "transformer.level_embed", "transformer.conv.weight",
    "transformer.encoder.layers.0.self_attn_8.weight", "transformer.encoder.layers.0.self_attn_64.weight",
    "transformer.encoder.layers.0.high_to_low.weight", "transformer.encoder.layers.0.low_to_high.weight",
    "transformer.encoder.layers.0.conv_1.weight", "transformer.encoder.layers.0.conv_2.weight", "transformer.encoder.layers.0.norm2.weight",
    "transformer.decoder.layers.0.point1.layers.0.weight", "transformer.decoder.layers.0.point2.weight",
    "transformer.decoder.layers.1.point3.weight", "transformer.decoder.layers.1.point4.weight",
    "transformer.decoder.layers.1.multihead_attn.in_proj_weight", "backbone.0.body.layer2.0.conv1.weight",
)


def tiny_resnet():
    net = torchvision.models.resnet18(weights=None, norm_layer=FrozenBatchNorm2d)
    net.inplanes = 16
    net.conv1 = nn.Conv2d(3, 16, kernel_size=7, stride=2, padding=3, bias=False)
    net.bn1 = FrozenBatchNorm2d(16)
    for index, width in enumerate((16, 32, 64, 128)):
        setattr(net, f"layer{index + 1}", net._make_layer(BasicBlock, width, 1, stride=1 if index == 0 else 2))
    return net


def arguments(scale_type):
    return types.SimpleNamespace(
        hidden_dim=256, nheads=8, enc_layers=1, dec_layers=2, dim_feedforward=32, dropout=0.0, pre_norm=False, smooth=8.0,
        dynamic_scale=scale_type, set_cost_class=2.0, set_cost_bbox=5.0, set_cost_giou=2.0)


def build(scale_type):
    torch.manual_seed(0)
    backbone = Joiner(BackboneBase(tiny_resnet(), True, 128, False), PositionEmbeddingSine(128, normalize=True))
    backbone.num_channels = 128
    return DETR(backbone, build_single_scale_transformer(arguments(scale_type)), num_classes=CLASSES, num_queries=QUERIES, aux_loss=True)


def build_multi_scale():
    torch.manual_seed(0)
    options = arguments("type3")
    options.dec_layers, options.head_mixture, options.query_mixture = 6, False, False
    backbone = Joiner(BackboneBase(tiny_resnet(), True, 128, True), PositionEmbeddingSine(128, normalize=True))
    backbone.num_channels = 128
    model = DETR(backbone, build_multi_scale_transformer(options), num_classes=CLASSES, num_queries=MULTI_SCALE_QUERIES, aux_loss=True,
                 position_encoding=PositionEmbeddingSine(128, normalize=True))
    # The official constructor initializes exactly 6 decoder layers; the test model keeps the first 2.
    model.transformer.decoder.layers = model.transformer.decoder.layers[:2]
    model.transformer.decoder.num_layers = 2
    return model


def on_grid(tensor):
    return (tensor * 64).round().clamp(-127, 127) / 64


def perturb(state, generator, spread=0.02):
    for key, value in state.items():
        if not value.is_floating_point():
            continue
        if key.endswith("running_var"):
            value.copy_(torch.rand(value.shape, generator=generator) * 0.5 + 0.75)
        elif key.endswith("running_mean"):
            value.copy_(torch.randn(value.shape, generator=generator) * 0.1)
        else:
            value.add_(torch.randn(value.shape, generator=generator) * spread)
        value.copy_(on_grid(value))


def as_int8(state):
    return {key: (value * 64).round().to(torch.int8) if value.is_floating_point() else value for key, value in state.items()}


def record_gradients(model, total, golden):
    total.backward()
    parameters = dict(model.named_parameters())
    for name in GRADIENT_PROBES if VARIANT == "single-scale" else MULTI_SCALE_GRADIENT_PROBES:
        gradient = parameters[name].grad.flatten()
        golden[f"gradient.{name}.norm"] = gradient.norm().reshape(())
        golden[f"gradient.{name}.head"] = gradient[:2048].clone()


def multi_scale():
    """The released multi-scale model, one image at a time (see the module's doc)."""
    OUT.mkdir(parents=True, exist_ok=True)
    model = build_multi_scale()
    state = model.state_dict()
    perturb(state, torch.Generator().manual_seed(1))
    perturb({k: v for k, v in state.items() if ".point3." in k}, torch.Generator().manual_seed(12), spread=0.1)
    model.load_state_dict(state)
    save_file({k: v.contiguous() for k, v in as_int8(state).items()}, str(OUT / "model.safetensors"))
    generator = torch.Generator().manual_seed(2)
    sizes = [(192, 256), (160, 224)]
    output_sizes = [(384, 512), (300, 420)]
    images = [torch.randn((3, h, w), generator=generator).half().float() for h, w in sizes]
    targets = [
        {"size": torch.tensor(sizes[0]), "labels": torch.tensor([1, 3, 0]),
         "boxes": torch.tensor([[0.30, 0.40, 0.20, 0.30], [0.70, 0.60, 0.30, 0.25], [0.45, 0.52, 0.60, 0.70]])},
        {"size": torch.tensor(sizes[1]), "labels": torch.tensor([4]), "boxes": torch.tensor([[0.50, 0.50, 0.40, 0.50]])},
    ]
    golden = {}
    weight_dict = dict(WEIGHTS)
    weight_dict.update({f"{k}_0": v for k, v in WEIGHTS.items()})
    matcher = build_matcher(arguments("type3"))
    criterion = SetCriterion(CLASSES, matcher=matcher, weight_dict=weight_dict, eos_coef=0.1, losses=["labels", "boxes"])
    for index, (image, target) in enumerate(zip(images, targets)):
        prefix = f"multi.image{index}"
        golden[f"{prefix}.image"] = image.half()
        model.eval()
        with torch.no_grad():
            output = model([[image.clone()], [target]])
            (queries, matched), = matcher({k: v for k, v in output.items() if k != "aux_outputs"}, [target])
            official, = PostProcess()(output, torch.tensor([output_sizes[index]]))
            # Its labels are read from a table of 92 outputs per query (COCO's), wrong for 6: the label of a
            # flattened (query, class) index is the index modulo the outputs, as in the single-scale code.
            # The same 500 best pairs, with their labels from the index:
            classes = output["pred_logits"].shape[-1]
            scores, top = output["pred_logits"][0].sigmoid().flatten().topk(500)
            height, width = output_sizes[index]
            boxes = box_cxcywh_to_xyxy(output["pred_boxes"][0][top // classes]) * torch.tensor([width, height, width, height])
            assert torch.equal(scores, official["scores"].sort(descending=True).values)
            detections = {"scores": scores, "labels": top % classes, "boxes": boxes}
        layers = output["aux_outputs"] + [{"pred_logits": output["pred_logits"], "pred_boxes": output["pred_boxes"]}]
        golden[f"{prefix}.logits"] = torch.stack([layer["pred_logits"][0] for layer in layers])
        golden[f"{prefix}.boxes"] = torch.stack([layer["pred_boxes"][0] for layer in layers])
        golden[f"{prefix}.indices.queries"], golden[f"{prefix}.indices.targets"] = queries, matched
        order = detections["scores"].argsort(descending=True, stable=True)
        for key in ("scores", "labels", "boxes"):
            golden[f"{prefix}.detections.{key}"] = detections[key][order]
        model.train()
        model.zero_grad()
        losses = criterion(model([[image.clone()], [target]]), [target])
        for key in weight_dict:
            golden[f"{prefix}.loss.{key}"] = losses[key].detach().reshape(())
        if index == 0:
            record_gradients(model, sum(losses[key] * weight for key, weight in weight_dict.items()), golden)
    save_file({k: v.contiguous() for k, v in golden.items()}, str(OUT / "golden.safetensors"))
    meta = {
        "made_by": f"Scripts/goldens/make_smca_goldens.py --variant multi-scale: gaopengcuhk/SMCA-DETR {COMMIT} "
                   f"(Multi_scale_SMCA.zip, transformer_44_dot_4.py), torch {torch.__version__}, torchvision {torchvision.__version__}",
        "classes": CLASSES, "queries": MULTI_SCALE_QUERIES, "encoder_layers": 1, "decoder_layers": 2, "feed_forward": 32, "kernel": 7,
        "backbone": {"blocks_per_stage": [1, 1, 1, 1], "stem_channels": 16, "stage_channels": [16, 32, 64, 128], "bottleneck": False},
        "image_sizes": sizes, "output_sizes": output_sizes, "loss_weights": WEIGHTS,
        "targets": [{"labels": t["labels"].tolist(), "boxes": t["boxes"].tolist()} for t in targets],
        "gradient_probes": list(MULTI_SCALE_GRADIENT_PROBES),
    }
    (OUT / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    print({k.split(".loss.")[1]: round(float(v), 5) for k, v in golden.items() if k.startswith("multi.image0.loss.")})


def main():
    if VARIANT == "multi-scale":
        return multi_scale()
    OUT.mkdir(parents=True, exist_ok=True)
    base = build("type3")
    base_state = base.state_dict()
    perturb(base_state, torch.Generator().manual_seed(1))
    # The scale projections start at weight 0, bias 1: spread them more, so that the types differ clearly.
    perturb({k: v for k, v in base_state.items() if ".point3." in k}, torch.Generator().manual_seed(12), spread=0.1)
    models, scales = {}, {}
    for index, scale_type in enumerate(TYPES):
        model = build(scale_type)
        state = model.state_dict()
        own = {key: value for key, value in state.items() if ".point3." in key}
        perturb(own, torch.Generator().manual_seed(10 + index), spread=0.1)  # types differ clearly
        for key, value in state.items():
            value.copy_(own[key] if key in own and scale_type != "type3" else base_state[key])
        model.load_state_dict(state)
        if scale_type in ("type2", "type4"):
            scales.update({f"{scale_type}.{key}": value for key, value in own.items()})
        models[scale_type] = model
    save_file({k: v.contiguous() for k, v in as_int8(base_state).items()}, str(OUT / "model.safetensors"))
    save_file({k: v.contiguous() for k, v in as_int8(scales).items()}, str(OUT / "scales.safetensors"))

    generator = torch.Generator().manual_seed(2)
    sizes = [(192, 256), (160, 224)]
    output_sizes = [(384, 512), (300, 420)]
    images = [torch.randn((3, h, w), generator=generator).half().float() for h, w in sizes]  # stored as float16
    padded = torch.zeros(2, 3, *sizes[0])
    for i, image in enumerate(images):
        padded[i, :, : image.shape[1], : image.shape[2]] = image
    targets = [
        {"size": torch.tensor(sizes[0]), "labels": torch.tensor([1, 3, 0]),
         "boxes": torch.tensor([[0.30, 0.40, 0.20, 0.30], [0.70, 0.60, 0.30, 0.25], [0.45, 0.52, 0.60, 0.70]])},
        {"size": torch.tensor(sizes[1]), "labels": torch.tensor([4]), "boxes": torch.tensor([[0.50, 0.50, 0.40, 0.50]])},
    ]
    golden = {"images": padded.half()}
    weight_dict = dict(WEIGHTS)
    weight_dict.update({f"{k}_0": v for k, v in WEIGHTS.items()})
    for scale_type, model in models.items():
        model.eval()
        matcher = build_matcher(arguments(scale_type))
        criterion = SetCriterion(CLASSES, matcher=matcher, weight_dict=weight_dict, eos_coef=0.1, losses=["labels", "boxes"])
        with torch.no_grad():
            output = model([[image.clone() for image in images], targets])
            indices = matcher({k: v for k, v in output.items() if k != "aux_outputs"}, targets)
            detections = PostProcess()(output, torch.tensor(output_sizes))
        layers = output["aux_outputs"] + [{"pred_logits": output["pred_logits"], "pred_boxes": output["pred_boxes"]}]
        golden[f"{scale_type}.logits"] = torch.stack([layer["pred_logits"] for layer in layers])
        golden[f"{scale_type}.boxes"] = torch.stack([layer["pred_boxes"] for layer in layers])
        for i, (queries, matched) in enumerate(indices):
            golden[f"{scale_type}.indices.{i}.queries"] = queries
            golden[f"{scale_type}.indices.{i}.targets"] = matched
        for i, result in enumerate(detections):
            order = result["scores"].argsort(descending=True, stable=True)
            for key in ("scores", "labels", "boxes"):
                golden[f"{scale_type}.detections.{i}.{key}"] = result[key][order]
        model.train()
        model.zero_grad()
        output = model([[image.clone() for image in images], targets])
        losses = criterion(output, targets)
        for key in weight_dict:
            golden[f"{scale_type}.loss.{key}"] = losses[key].detach().reshape(())
        if scale_type == "type3":
            record_gradients(model, sum(losses[key] * weight for key, weight in weight_dict.items()), golden)
    save_file({k: v.contiguous() for k, v in golden.items()}, str(OUT / "golden.safetensors"))
    meta = {
        "made_by": f"Scripts/goldens/make_smca_goldens.py: gaopengcuhk/SMCA-DETR {COMMIT}, torch {torch.__version__}, "
                   f"torchvision {torchvision.__version__}",
        "classes": CLASSES, "queries": QUERIES, "encoder_layers": 1, "decoder_layers": 2, "feed_forward": 32,
        "backbone": {"blocks_per_stage": [1, 1, 1, 1], "stem_channels": 16, "stage_channels": [16, 32, 64, 128], "bottleneck": False},
        "image_sizes": sizes, "output_sizes": output_sizes, "loss_weights": WEIGHTS,
        "targets": [{"labels": t["labels"].tolist(), "boxes": t["boxes"].tolist()} for t in targets],
        "gradient_probes": list(GRADIENT_PROBES),
    }
    (OUT / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    for scale_type in TYPES:
        print(scale_type, {k.split(".loss.")[1]: round(float(v), 5) for k, v in golden.items() if k.startswith(f"{scale_type}.loss.")})


if __name__ == "__main__":
    main()
