"""Converts a checkpoint of the official repositories (facebookresearch/detr, Atten4Vis/ConditionalDETR,
fundamentalvision/Deformable-DETR, IDEA-Research/detrex for DINO, huawei-noah/noah-research or detrex for
Focus-DETR, gaopengcuhk/SMCA-DETR for SMCA-DETR, single scale and the released multi-scale model;
torchvision's RetinaNet and mmdetection-layout RetinaNets, the DSA authors' chenzuge1/DSANet included)
into a swift-detr checkpoint folder.

    python Scripts/convert_official_checkpoint.py --family retinanet --preset r50-torchvision \
        --checkpoint retinanet_resnet50_fpn_coco-eeacb38b.pth --output weights/retinanet

    python Scripts/convert_official_checkpoint.py --family deformable-detr --preset r50-two-stage \\
        --checkpoint r50_deformable_detr_plus_iterative_bbox_refinement_plus_plus_two_stage-checkpoint.pth --output weights/deformable

A checkpoint of an architecture no preset describes (e.g. SMCA-DETR trained with another
--dynamic_scale) converts with --config FILE.json instead of --preset: a swift-detr config of the family
(`detr train --model M --preset P --set key=value` writes one into its run folder's config.json,
under "config"), stored in full in the converted folder.

The .pth is read with torch.load(weights_only=True): tensors only, no code runs. The weights are written
unchanged to model.safetensors; config.json names the family, the preset (the architecture), the key
layout (detrex's for DINO and Focus-DETR: swift-detr renames its detectron2 backbone keys and drops its
aliased heads on load; torchvision's for its RetinaNet, renamed on load) and the categories: COCO's 91 ids for the official DETR-family checkpoints (their class index is
the category id) and torchvision's RetinaNet, COCO's 80 categories in id order for detrex's and
mmdetection's (class index i is the i-th category).
Needs torch and safetensors ("$(Scripts/reference-env.sh)" has both).
"""
import argparse
import json
import pathlib

import torch
from safetensors.torch import save_file

PRESETS = {
    "detr": ["r50", "r101", "small"],
    "conditional-detr": ["r50", "small"],
    "deformable-detr": ["r50", "r50-single-scale", "r50-box-refinement", "r50-two-stage", "small"],
    "dino": ["r50-4scale", "r50-4scale-24ep", "r50-5scale", "small"],
    "focus-detr": ["r50-4scale", "r50-4scale-36ep", "small"],
    "smca-detr": ["r50", "r50-multi-scale", "r50-paper-multi-scale", "small"],
    "retinanet": ["r50", "r50-torchvision", "small"],
    "dsa-retinanet": ["r50", "r50-confidence", "small"],
}
DETREX_FAMILIES = ("dino", "focus-detr")
RETINANET_FAMILIES = ("retinanet", "dsa-retinanet")
# The classification output of each RetinaNet layout: 9 anchors x classes channels.
RETINANET_HEADS = ("head.classification_head.cls_logits.weight", "bbox_head.retina_cls.weight")

# COCO 2017 category ids and names; the other ids up to 90 are unused ("N/A" in the official code).
COCO_NAMES = {
    1: "person", 2: "bicycle", 3: "car", 4: "motorcycle", 5: "airplane", 6: "bus", 7: "train", 8: "truck", 9: "boat",
    10: "traffic light", 11: "fire hydrant", 13: "stop sign", 14: "parking meter", 15: "bench", 16: "bird", 17: "cat", 18: "dog",
    19: "horse", 20: "sheep", 21: "cow", 22: "elephant", 23: "bear", 24: "zebra", 25: "giraffe", 27: "backpack", 28: "umbrella",
    31: "handbag", 32: "tie", 33: "suitcase", 34: "frisbee", 35: "skis", 36: "snowboard", 37: "sports ball", 38: "kite",
    39: "baseball bat", 40: "baseball glove", 41: "skateboard", 42: "surfboard", 43: "tennis racket", 44: "bottle",
    46: "wine glass", 47: "cup", 48: "fork", 49: "knife", 50: "spoon", 51: "bowl", 52: "banana", 53: "apple", 54: "sandwich",
    55: "orange", 56: "broccoli", 57: "carrot", 58: "hot dog", 59: "pizza", 60: "donut", 61: "cake", 62: "chair", 63: "couch",
    64: "potted plant", 65: "bed", 67: "dining table", 70: "toilet", 72: "tv", 73: "laptop", 74: "mouse", 75: "remote",
    76: "keyboard", 77: "cell phone", 78: "microwave", 79: "oven", 80: "toaster", 81: "sink", 82: "refrigerator", 84: "book",
    85: "clock", 86: "vase", 87: "scissors", 88: "teddy bear", 89: "hair drier", 90: "toothbrush",
}


def check_smca(parser, args, tensors):
    """The presets are the official type3 models (8 heads: scale projections of 16 outputs per layer and key
    segment) with 300 queries and 6 decoder layers: single scale with 6 encoder layers and a 2048-wide
    feed-forward, the released multi-scale model with 6 encoder layers and 1024; another shape would load
    into the wrong architecture."""
    multi_scale = "input_proj_512.weight" in tensors
    if args.preset != ("r50-multi-scale" if multi_scale else "r50"):
        parser.error(f"--preset: this official SMCA-DETR checkpoint is of the {'r50-multi-scale' if multi_scale else 'r50'} preset")
    scale = tensors.get("transformer.decoder.layers.0.point3.weight")
    decoder_layers = len({k.split(".")[3] for k in tensors if k.startswith("transformer.decoder.layers.")})
    encoder_layers = len({k.split(".")[3] for k in tensors if k.startswith("transformer.encoder.layers.")})
    found = {"queries": tensors["query_embed.weight"].shape[0], "decoder layers": decoder_layers, "encoder layers": encoder_layers,
             "feed-forward": tensors["transformer.decoder.layers.0.linear1.weight"].shape[0],
             "scale outputs": None if scale is None else scale.shape[0]}
    expected = {"queries": 300, "decoder layers": 6, "encoder layers": 6, "feed-forward": 1024 if multi_scale else 2048,
                "scale outputs": 64 if multi_scale else 16}
    differing = [f"{name} {found[name]} (the preset has {value})" for name, value in expected.items() if found[name] != value]
    if differing:
        parser.error(f"{args.checkpoint}: differs from the {args.preset} preset: {', '.join(differing)}; give its architecture "
                     "with --config instead of --preset")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--family", required=True, choices=sorted(PRESETS))
    architecture = parser.add_mutually_exclusive_group(required=True)
    architecture.add_argument("--preset", help="the architecture the checkpoint was trained with")
    architecture.add_argument("--config", type=pathlib.Path, help="the architecture as a swift-detr config JSON of the family")
    parser.add_argument("--checkpoint", required=True, type=pathlib.Path)
    parser.add_argument("--output", required=True, type=pathlib.Path)
    args = parser.parse_args()
    config_object = None
    if args.config is not None:
        try:
            config_object = json.loads(args.config.read_text())
        except (OSError, ValueError) as error:
            parser.error(f"--config {args.config}: cannot be read as JSON ({error})")
        config_object = config_object.get("config", config_object)  # a run folder's config.json holds it under "config"
        if not isinstance(config_object, dict) or "backbone" not in config_object:
            parser.error(f"--config {args.config}: is not a swift-detr model config (no 'backbone' field)")
    elif args.preset not in PRESETS[args.family]:
        parser.error(f"--preset {args.preset} is not a preset of {args.family}: {', '.join(PRESETS[args.family])}")
    try:
        loaded = torch.load(args.checkpoint, map_location="cpu", weights_only=True)
    except Exception as error:  # a pickle with code, or not a checkpoint at all
        parser.error(f"{args.checkpoint}: cannot be read as a tensors-only checkpoint ({error})")
    # DETR-family checkpoints keep the weights under "model", mmdetection's under "state_dict".
    state = (loaded.get("model") or loaded.get("state_dict") or loaded) if isinstance(loaded, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        parser.error(f"{args.checkpoint}: holds no state dict (expected a dict of tensors, or one under 'model')")
    # clone(): names that share a tensor (detrex lists its heads twice) become separate copies, as safetensors requires
    tensors = {k: v.contiguous().clone() for k, v in state.items() if not k.endswith("num_batches_tracked")}
    if args.family in RETINANET_FAMILIES:
        return convert_retinanet(parser, args, tensors, config_object)
    head = next((k for k in ("class_embed.weight", "class_embed.0.weight") if k in tensors), None)
    expected_head = "class_embed.0.weight" if args.family in ("deformable-detr",) + DETREX_FAMILIES else "class_embed.weight"
    focus = any(k.startswith("transformer.enc_mask_predictor.") for k in tensors)
    smca = "transformer.decoder.layers.0.point1.layers.0.weight" in tensors
    if (head != expected_head or (args.family in DETREX_FAMILIES) != ("label_enc.weight" in tensors)
            or focus != (args.family == "focus-detr") or smca != (args.family == "smca-detr")):
        parser.error(f"{args.checkpoint}: does not look like a {args.family} checkpoint; check --family")
    if smca and config_object is None:
        check_smca(parser, args, tensors)
    classes = tensors[head].shape[0] - (1 if args.family in ("detr", "smca-detr") else 0)
    coco_classes = 80 if args.family in DETREX_FAMILIES else 91
    if config_object is None and classes != coco_classes:
        parser.error(f"{args.checkpoint}: has {classes} classes; only COCO checkpoints ({coco_classes}) carry known category names")
    write_folder(args, tensors, classes, coco_classes, config_object, "detrex" if args.family in DETREX_FAMILIES else None)


def write_folder(args, tensors, classes, coco_classes, config_object, layout):
    """Writes model.safetensors and config.json. Categories: COCO's 91 ids (class index = id) for a 91-class
    head, COCO's 80 in id order for an 80-class one, "class i" for any other count (given with --config)."""
    args.output.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(args.output / "model.safetensors"), metadata={"format": "swift-detr", "source": args.checkpoint.name})
    if coco_classes == 80:
        categories = [{"id": i, "name": name} for i, name in sorted(COCO_NAMES.items())]
    else:
        categories = [{"id": i, "name": COCO_NAMES.get(i, "N/A")} for i in range(91)]
    if config_object is not None:
        if classes != coco_classes:  # not COCO's: the class indices are all there is to name them by
            categories = [{"id": i, "name": f"class {i}"} for i in range(classes)]
        config_object["class_count"] = classes
    config = {"format": "swift-detr", "version": 1, "model": args.family, "categories": {"categories": categories}}
    if config_object is None:
        config["preset"] = args.preset
    else:
        config["config"] = config_object
    if layout is not None:
        config["layout"] = layout
    (args.output / "config.json").write_text(json.dumps(config, indent=1))
    print(f"wrote {args.output}: {len(tensors)} tensors, {args.family} {args.preset or args.config}")


def convert_retinanet(parser, args, tensors, config_object):
    """RetinaNet and DSA-RetinaNet: torchvision's layout (renamed by swift-detr on load) or mmdetection's (the keys
    swift-detr's modules have); the class count from the classification output (9 anchors)."""
    head = next((k for k in RETINANET_HEADS if k in tensors), None)
    dsa = "neck.fpn_selfatt.0.gamma" in tensors
    if head is None or dsa != (args.family == "dsa-retinanet"):
        parser.error(f"{args.checkpoint}: does not look like a {args.family} checkpoint; check --family")
    torchvision = head == RETINANET_HEADS[0]
    if config_object is None and torchvision != (args.preset == "r50-torchvision"):
        parser.error(f"{args.checkpoint}: is in {'torchvision' if torchvision else 'mmdetection'}'s layout; "
                     f"use --preset {'r50-torchvision' if torchvision else 'r50'} (or --config)")
    if config_object is None and args.preset == "r50-confidence" and "bbox_head.retina_iou.weight" not in tensors:
        parser.error(f"{args.checkpoint}: has no object-confidence output (bbox_head.retina_iou); use --preset r50")
    classes = tensors[head].shape[0] // 9
    coco_classes = 91 if torchvision else 80
    if config_object is None and classes != coco_classes:
        parser.error(f"{args.checkpoint}: has {classes} classes; only COCO checkpoints ({coco_classes}) carry known category names")
    write_folder(args, tensors, classes, coco_classes, config_object, "torchvision" if torchvision else None)


if __name__ == "__main__":
    main()
