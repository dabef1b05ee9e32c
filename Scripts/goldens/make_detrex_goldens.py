"""Golden tensors of the official detrex DINO and Focus-DETR (IDEA-Research/detrex e244e6c, whose
projects/focus_detr is huawei-noah/noah-research's Focus-DETR; detectron2 70f4543), run on the CPU,
for Tests/DetectorsTests/Fixtures/dino_detrex/ and focus_detr_detrex/.

A small model from the project's own `<arch>_r50` config (the model code is the official one; only
sizes change): a one-block-per-stage detectron2 ResNet (stem 16, res2-res5 32/64/128/64 channels),
4 levels, 2 decoder layers and 1 encoder layer (DINO) or 2 (Focus-DETR, whose token scoring inside
the encoder uses the class head of index `encoder layers`, the proposals' head only when the depths
agree), FFN 32, 5 classes, 30 queries, 10 denoising queries; Focus-DETR's self-attention among 64
tokens (`topk_sa`: the official 300 needs larger images). The width stays
256: detrex's query sine embedding has 128 features per coordinate fixed. Every weight is
perturbed (N(0, 0.02) added; frozen batch-norm statistics random) and then put on a grid of 1/64
in [-127/64, 127/64], so that the fixture stores it exactly as int8 (value · 64) at a quarter of
the size; the reference runs in float32 on those values.

Writes:
  model.safetensors  detrex's state dict (detectron2 backbone keys) as int8 · 1/64, without the
                     decoder's second names for the heads (`transformer.decoder.class_embed.*`)
  eval.safetensors   two 160x192 images (uint8 pixels, padded with 0), the final and auxiliary logits and boxes, the
                     encoder's selected proposals, and the post-processed detections
  train.safetensors  two images of different sizes (uint8) with their padding mask and targets, the noised
                     denoising labels and boxes the reference drew (to inject), the denoising
                     queries' outputs, the 15 loss terms (unweighted) and, for parameters along
                     every path, the norm and the first 2048 entries of the gradient of the weighted total
  meta.json          versions, sizes, denoising layout, loss weights

Focus-DETR's files also hold the foreground logits of every token and the `select_loss` term.

Run: PYTHONPATH=Scripts/reference/detrex "$(Scripts/reference/detrex/env.sh)" Scripts/goldens/make_detrex_goldens.py --arch dino|focus_detr
"""
import argparse
import json
import pathlib
import sys

import detrex_cpu  # noqa: F401  (must come first)

import detectron2
import torch
from detectron2.config import LazyCall as L
from detectron2.config import LazyConfig, instantiate
from detectron2.layers import ShapeSpec
from detectron2.modeling.backbone import BottleneckBlock, ResNet
from detectron2.structures import Boxes, Instances
from safetensors.torch import save_file

FIXTURES = pathlib.Path(__file__).resolve().parents[2] / "Tests/DetectorsTests/Fixtures"
GRADIENT_PROBES = (
    "class_embed.0.weight", "class_embed.1.bias", "class_embed.2.weight", "bbox_embed.0.layers.2.weight", "bbox_embed.1.layers.0.weight",
    "bbox_embed.2.layers.2.bias", "label_enc.weight", "transformer.tgt_embed.weight", "transformer.level_embeds",
    "transformer.decoder.layers.0.attentions.1.sampling_offsets.weight", "transformer.decoder.layers.1.attentions.0.attn.in_proj_weight",
    "transformer.decoder.ref_point_head.layers.0.weight", "transformer.encoder.layers.0.ffns.0.layers.1.weight",
    "transformer.enc_output.weight", "neck.convs.0.conv.weight", "neck.extra_convs.0.norm.weight",
)
FOCUS_GRADIENT_PROBES = ("transformer.alpha", "transformer.enc_mask_predictor.layer2.4.weight",
                         "transformer.encoder.layers.1.attentions.0.attn.in_proj_weight", "transformer.encoder.layers.1.norm2.weight")
ALIASES = ("transformer.decoder.class_embed.", "transformer.decoder.bbox_embed.", "enhance_MCSP_layerlist.",
           "transformer.encoder.enhance_MCSP.")


def tiny_stages():
    spec = [(16, 32, 8, 1), (32, 64, 16, 2), (64, 128, 32, 2), (128, 64, 16, 2)]  # in, out, bottleneck, stride
    return [ResNet.make_stage(BottleneckBlock, 1, stride_per_block=[s], in_channels=i, out_channels=o, bottleneck_channels=b,
                              stride_in_1x1=False, norm="FrozenBN") for i, o, b, s in spec]


def build(arch):
    cfg = LazyConfig.load(str(pathlib.Path(detrex_cpu.SRC) / f"detrex/projects/{arch}/configs/models/{arch}_r50.py"))
    m = cfg.model
    m.backbone.stem.out_channels = 16
    m.backbone.stages = L(tiny_stages)()
    m.neck.input_shapes = {"res3": ShapeSpec(channels=64), "res4": ShapeSpec(channels=128), "res5": ShapeSpec(channels=64)}
    m.transformer.encoder.num_layers = 1 if arch == "dino" else 2
    m.transformer.decoder.num_layers = 2
    for part in (m.transformer.encoder, m.transformer.decoder):
        part.feedforward_dim = 32
    m.num_classes = 5
    m.num_queries = 30
    m.dn_number = 10
    m.device = "cpu"
    m.select_box_nums_for_evaluation = 30
    # The config's weight dict names aux terms for 6 decoder layers; this model has 2.
    base = {k: v for k, v in m.criterion.weight_dict.items() if not k[-1].isdigit() and not k.endswith(("_enc", "select_loss"))}
    weights = dict(base)
    weights.update({k + "_enc": v for k, v in base.items()})
    weights.update({k + "_0": v for k, v in base.items()})
    m.criterion.weight_dict = weights
    torch.manual_seed(0)
    model = instantiate(m)
    if arch == "focus_detr":
        for layer in model.transformer.encoder.layers:
            layer.topk_sa = 64
    return model


def on_grid(tensor):
    tensor.copy_((tensor * 64).round().clamp(-127, 127) / 64)


def perturb(model):
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for _, p in model.named_parameters():
            p.add_(torch.randn(p.shape, generator=generator) * 0.02)
            on_grid(p)
        for name, b in model.named_buffers():
            if not b.is_floating_point():
                continue
            if name.endswith("running_var"):
                b.copy_(1.0 + 0.2 * torch.rand(b.shape, generator=generator))
            elif name.endswith("weight"):
                b.copy_(1.0 + 0.1 * torch.randn(b.shape, generator=generator))
            else:
                b.copy_(0.1 * torch.randn(b.shape, generator=generator))
            on_grid(b)


class Capture:
    """The locals of some functions when they return (sys.setprofile), cloned."""

    def __init__(self, functions):
        self.codes = {f.__code__: f.__qualname__ for f in functions}
        self.calls = {}

    def _profile(self, frame, event, arg):
        if event == "return" and frame.f_code in self.codes:
            self.calls.setdefault(self.codes[frame.f_code], []).append(
                {k: (v.detach().clone() if isinstance(v, torch.Tensor) else v) for k, v in frame.f_locals.items() if k != "self"})

    def __enter__(self):
        sys.setprofile(self._profile)
        return self

    def __exit__(self, *exc):
        sys.setprofile(None)

    def last(self, function):
        return self.calls[function.__qualname__][-1]


def inputs(sizes, generator, train):
    batch = []
    for index, (h, w) in enumerate(sizes):
        item = {"image": torch.randint(0, 256, (3, h, w), generator=generator).float(), "height": h, "width": w}
        if train:
            n = 3 if index == 0 else 2
            x0 = torch.rand(n, generator=generator) * w * 0.6
            y0 = torch.rand(n, generator=generator) * h * 0.6
            bw = 8 + torch.rand(n, generator=generator) * (w * 0.4 - 8)
            bh = 8 + torch.rand(n, generator=generator) * (h * 0.4 - 8)
            instances = Instances((h, w))
            instances.gt_boxes = Boxes(torch.stack([x0, y0, x0 + bw, y0 + bh], 1))
            instances.gt_classes = torch.randint(0, 5, (n,), generator=generator)
            item["instances"] = instances
        batch.append(item)
    return batch


def pixels_and_mask(batch, images):
    """The raw pixels padded as the normalized images are (with zeros), and the padding mask."""
    pixels = torch.zeros(images.shape, dtype=torch.uint8)
    mask = torch.ones(images.shape[0], images.shape[2], images.shape[3], dtype=torch.bool)
    for index, item in enumerate(batch):
        _, h, w = item["image"].shape
        pixels[index, :, :h, :w] = item["image"].to(torch.uint8)
        mask[index, :h, :w] = False
    return pixels, mask


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--arch", choices=["dino", "focus_detr"], required=True)
    arch = parser.parse_args().arch
    if arch == "dino":
        from projects.dino.modeling import DINO
        inner = []
    else:
        from projects.focus_detr.modeling import FOCUS_DETR as DINO
        from projects.focus_detr.modeling.focus_detr_transformer import FOCUS_DETRTransformer
        from projects.focus_detr.modeling.transformer_layer import Focus_DETR_BaseTransformerLayer
        inner = [FOCUS_DETRTransformer.forward, Focus_DETR_BaseTransformerLayer.forward]

    torch.set_num_threads(1)
    out = FIXTURES / f"{arch}_detrex"
    out.mkdir(parents=True, exist_ok=True)
    model = build(arch)
    perturb(model)
    state = {k: (v * 64).round().to(torch.int8).contiguous() for k, v in model.state_dict().items() if not k.startswith(ALIASES)}
    metadata = {"script": f"Scripts/goldens/make_detrex_goldens.py --arch {arch}", "torch": torch.__version__,
                "detrex": "e244e6c3da3e84566728c52c21fb061d23ce0e2f", "detectron2": "70f454304e1a38378200459dd2dbca0f0f4a5ab4"}
    save_file(state, str(out / "model.safetensors"), metadata=metadata)
    generator = torch.Generator().manual_seed(2)

    model.eval()
    eval_batch = inputs([(160, 192), (160, 192)], generator, train=False)
    with torch.no_grad(), Capture([DINO.forward] + inner) as capture:
        results = model(eval_batch)
    local = capture.last(DINO.forward)
    images = local["images"].tensor
    output = local["output"]
    pixels, mask = pixels_and_mask(eval_batch, images)
    evaluation = {
        "pixels": pixels, "padding_mask": mask, "images": images[:, :, ::40, ::40],
        "logits": output["pred_logits"], "boxes": output["pred_boxes"],
        "aux_logits": output["aux_outputs"][0]["pred_logits"], "aux_boxes": output["aux_outputs"][0]["pred_boxes"],
        "encoder_logits": output["enc_outputs"]["pred_logits"], "encoder_boxes": output["enc_outputs"]["pred_boxes"],
    }
    if arch == "focus_detr":
        evaluation["foreground_logits"] = output["temp_backbone_mask_prediction"].squeeze(-1)
        transformer = capture.last(inner[0])
        layers = capture.calls[inner[1].__qualname__]
        for index, layer in enumerate(layers):  # the layers run: the first entries of the cascade
            evaluation[f"selected_tokens.{index}"] = transformer["foreground_inds"][index]
            evaluation[f"self_attention_tokens.{index}"] = layer["select_tgt_index"]
        evaluation["foreground_counts"] = transformer["focus_token_nums"]
    for index, result in enumerate(results):
        instances = result["instances"]
        evaluation[f"detections.{index}.boxes"] = instances.pred_boxes.tensor
        evaluation[f"detections.{index}.scores"] = instances.scores
        evaluation[f"detections.{index}.labels"] = instances.pred_classes
    save_file({k: v.contiguous() for k, v in evaluation.items()}, str(out / "eval.safetensors"), metadata=metadata)

    model.train()
    train_batch = inputs([(160, 192), (128, 160)], generator, train=True)
    torch.manual_seed(1234)  # the denoising noise is the forward pass's only random draw
    with Capture([DINO.forward, DINO.prepare_for_cdn]) as capture:
        losses = model(train_batch)
    local = capture.last(DINO.forward)
    denoising = capture.last(DINO.prepare_for_cdn)
    images = local["images"].tensor
    weights = model.criterion.weight_dict
    pixels, mask = pixels_and_mask(train_batch, images)
    train = {"pixels": pixels, "padding_mask": mask, "images": images[:, :, ::40, ::40],
             "noised_labels": denoising["known_labels_expaned"], "noised_boxes": denoising["known_bbox_expand"],
             "attention_mask": denoising["attn_mask"],
             "logits": local["output"]["pred_logits"], "boxes": local["output"]["pred_boxes"],
             "denoising_logits": local["dn_meta"]["output_known_lbs_bboxes"]["pred_logits"],
             "denoising_boxes": local["dn_meta"]["output_known_lbs_bboxes"]["pred_boxes"]}
    if arch == "focus_detr":
        train["foreground_logits"] = local["output"]["temp_backbone_mask_prediction"].squeeze(-1)
    for index, target in enumerate(local["targets"]):
        train[f"targets.{index}.labels"] = target["labels"]
        train[f"targets.{index}.boxes"] = target["boxes"]
    for name, value in losses.items():
        train[f"loss.{name}"] = (value / weights[name]).detach().reshape(())
    # Gradients of the weighted total (what training back-propagates) for parameters along every path:
    # heads of both layers (look forward twice), denoising label embedding, content queries, decoder
    # and encoder layers, proposal projection, neck; Focus-DETR's foreground scorer.
    sum(losses.values()).backward()
    parameters = dict(model.named_parameters(remove_duplicate=False))
    for name in GRADIENT_PROBES + (FOCUS_GRADIENT_PROBES if arch == "focus_detr" else ()):
        gradient = parameters[name].grad
        train[f"grad.{name}"] = gradient.flatten()[:2048]  # a sample, and the norm of the whole
        train[f"grad_norm.{name}"] = gradient.norm()
    save_file({k: v.contiguous() for k, v in train.items()}, str(out / "train.safetensors"), metadata=metadata)

    meta = {
        "made_by": f"Scripts/goldens/make_detrex_goldens.py --arch {arch}",
        "torch": torch.__version__, "detectron2": detectron2.__version__,
        "detrex_commit": "e244e6c3da3e84566728c52c21fb061d23ce0e2f",
        "detectron2_commit": "70f454304e1a38378200459dd2dbca0f0f4a5ab4",
        "denoising": {k: v for k, v in local["dn_meta"].items() if k != "output_known_lbs_bboxes"},
        "loss_weights": {k: float(v) for k, v in weights.items() if k in losses},
        "pixel_mean": [123.675, 116.280, 103.530],
        "pixel_std": [58.395, 57.120, 57.375],
        "weights": "int8, value = stored / 64",
        "images": "a sample of the normalized images ([:, :, ::40, ::40]) to check the normalization",
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(json.dumps(meta["denoising"]), {k: round(float(v), 5) for k, v in losses.items()})


if __name__ == "__main__":
    main()
