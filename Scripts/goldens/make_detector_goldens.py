"""Builds detector configurations in transformers with random, perturbed weights (every parameter and
buffer), saves each with save_pretrained under Tests/DetectorsTests/Fixtures/<name>/, and records
outputs on fixed inputs in <name>/expected.safetensors. Eager attention, auxiliary_loss=False.

Run: "$(Scripts/reference-env.sh)" Scripts/goldens/make_detector_goldens.py [NAME ...]   (all fixtures, or the named ones)

The *_per_side fixtures give the encoder and decoder different head counts and feed-forward widths, as
transformers allows (encoder 2 heads and FFN 48, decoder 8 heads and FFN 80).
"""
import pathlib
import sys
import shutil

import torch
import transformers
from safetensors.torch import save_file
from transformers import DetrConfig, DetrForObjectDetection, ResNetConfig

OUT = pathlib.Path(__file__).resolve().parents[2] / "Tests/DetectorsTests/Fixtures"


def perturb(model, seed):
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for key, value in model.state_dict().items():
            if not value.is_floating_point():
                continue
            noise = torch.randn(value.shape, generator=generator)
            if key.endswith("running_var"):
                value.copy_(noise.abs() * 0.2 + 0.5)
            elif key.endswith(("normalization.weight", "layer_norm.weight", "layernorm.weight")):
                value.copy_(1 + noise * 0.1)
            elif value.dim() >= 2:
                fan_in = value[0].numel()
                value.copy_(noise * (1.0 / fan_in) ** 0.5)
            else:
                value.copy_(noise * 0.1)


def inputs(seed):
    generator = torch.Generator().manual_seed(seed)
    pixels = torch.randn(2, 3, 96, 128, generator=generator)
    mask = torch.ones(2, 96, 128, dtype=torch.long)
    mask[1, :, 100:] = 0
    mask[1, 80:, :] = 0
    pixels[1] = pixels[1] * mask[1]
    return pixels, mask


def small_resnet(depths):
    return ResNetConfig(embedding_size=8, hidden_sizes=[16, 32, 64, 128], depths=depths, out_features=["stage4"])


def save(name, model, extra=None):
    folder = OUT / name
    shutil.rmtree(folder, ignore_errors=True)
    model.save_pretrained(folder)
    pixels, mask = inputs(7)
    with torch.no_grad():
        outputs = model(pixel_values=pixels, pixel_mask=mask)
    tensors = {"pixel_values": pixels, "pixel_mask": mask, "logits": outputs.logits, "pred_boxes": outputs.pred_boxes}
    # The processor's post-processing at threshold 0, for target sizes (height, width).
    processor = (transformers.DetrImageProcessor() if isinstance(model, DetrForObjectDetection)
                 else transformers.DeformableDetrImageProcessor())
    for index, result in enumerate(processor.post_process_object_detection(outputs, threshold=0.0, target_sizes=[(480, 640), (300, 200)])):
        for key in ("scores", "labels", "boxes"):
            tensors[f"post{index}.{key}"] = result[key]
    tensors.update(extra or {})
    meta = {"script": "Scripts/goldens/make_detector_goldens.py", "torch": torch.__version__, "transformers": transformers.__version__}
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(folder / "expected.safetensors"), metadata=meta)
    print("wrote", folder, sum(p.numel() for p in model.parameters()), "parameters")


def detr(name, seed, **options):
    torch.manual_seed(0)
    settings = dict(d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=64,
                    decoder_ffn_dim=64, num_queries=12, num_labels=5, attn_implementation="eager", auxiliary_loss=False)
    settings.update(options)
    model = DetrForObjectDetection(DetrConfig(use_timm_backbone=False, backbone_config=small_resnet([3, 4, 6, 3]), **settings)).eval()
    perturb(model, seed)
    save(name, model)


from transformers import ConditionalDetrConfig, ConditionalDetrForObjectDetection

def conditional(name, seed, **options):
    torch.manual_seed(0)
    settings = dict(d_model=32, encoder_layers=2, decoder_layers=3, encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=64,
                    decoder_ffn_dim=64, num_queries=12, num_labels=5, attn_implementation="eager", auxiliary_loss=False)
    settings.update(options)
    model = ConditionalDetrForObjectDetection(ConditionalDetrConfig(
        use_timm_backbone=False, backbone_config=small_resnet([3, 4, 6, 3]), **settings)).eval()
    perturb(model, seed)
    save(name, model)


from transformers import DeformableDetrConfig, DeformableDetrForObjectDetection


def deformable(name, seed, stages, **options):
    torch.manual_seed(0)
    settings = dict(d_model=32, encoder_layers=2, decoder_layers=3, encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=64,
                    decoder_ffn_dim=64, num_queries=12, num_labels=5, attn_implementation="eager", auxiliary_loss=False)
    settings.update(options)
    config = DeformableDetrConfig(
        use_timm_backbone=False, backbone_config=ResNetConfig(embedding_size=8, hidden_sizes=[16, 32, 64, 128], depths=[2, 1, 2, 1],
                                                              out_features=[f"stage{s}" for s in stages]), **settings)
    model = DeformableDetrForObjectDetection(config).eval()
    perturb(model, seed)
    save(name, model)


PER_SIDE = dict(encoder_attention_heads=2, decoder_attention_heads=8, encoder_ffn_dim=48, decoder_ffn_dim=80)
FIXTURES = {
    "detr_r50_small": lambda: detr("detr_r50_small", 1),
    "conditional_detr_r50_small": lambda: conditional("conditional_detr_r50_small", 2),
    "deformable_single_scale": lambda: deformable("deformable_single_scale", 3, [4], num_feature_levels=1),
    "deformable_multi_scale": lambda: deformable("deformable_multi_scale", 4, [2, 3, 4], num_feature_levels=4),
    "deformable_box_refine": lambda: deformable("deformable_box_refine", 5, [2, 3, 4], num_feature_levels=4, with_box_refine=True),
    "deformable_two_stage": lambda: deformable("deformable_two_stage", 6, [2, 3, 4], num_feature_levels=4, with_box_refine=True,
                                               two_stage=True, two_stage_num_proposals=12),
    "deformable_levels_heads_points": lambda: deformable("deformable_levels_heads_points", 7, [3, 4], num_feature_levels=5,
                                                         encoder_attention_heads=2, decoder_attention_heads=2, encoder_n_points=3,
                                                         decoder_n_points=2),
    "detr_per_side": lambda: detr("detr_per_side", 8, **PER_SIDE),
    "conditional_detr_per_side": lambda: conditional("conditional_detr_per_side", 9, **PER_SIDE),
    "deformable_per_side": lambda: deformable("deformable_per_side", 10, [2, 3, 4], num_feature_levels=4, with_box_refine=True,
                                              two_stage=True, two_stage_num_proposals=12, **PER_SIDE),
}
for name in sys.argv[1:] or FIXTURES:
    FIXTURES[name]()
