"""Golden tensors of the paper's multi-scale SMCA-DETR, whose code was never released, from an
independent PyTorch transcription of the project's spec (shared/spec smca-focus-detr.md, A.4 with the
decoder of A.5 on three maps), for Tests/DetectorsTests/Fixtures/smca_paper_transcription/.

The transcription is written here from the spec, not from swift-detr's code: DETR's post-norm encoder
layer (the official single-scale module) applied within each map or over all maps' tokens as the
layout says; a decoder layer whose cross-attention gives each key segment its own Gaussian prior
(built from each key's (x, y) cell index, not from separable factors) and its own softmax, weighted
per image by the scale-selection weights. A small model: a one-block ResNet (stages 16/32/64/128), 32
wide, 4 heads, 3 encoder layers (intra, multi, intra), 2 decoder layers, feed-forward 32, 12 queries,
5 classes, dropout 0, random weights. Two images of different sizes (padding).

Writes model.safetensors (swift-detr's keys), golden.safetensors (images as float16, every layer's
logits and boxes), meta.json.

Run: "$(Scripts/reference/smca/env.sh)" Scripts/goldens/make_smca_paper_goldens.py
"""
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "Scripts/reference/detrex"))
import tv_cpu_shim  # noqa: F401,E402  (must precede torchvision)

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import torchvision  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from torch import nn  # noqa: E402
from torchvision.models._utils import IntermediateLayerGetter  # noqa: E402
from torchvision.models.resnet import BasicBlock  # noqa: E402

sys.path.insert(0, str(ROOT / ".venv-smca/src/SMCA-DETR"))
from models.backbone import FrozenBatchNorm2d  # noqa: E402
from models.position_encoding import PositionEmbeddingSine  # noqa: E402
from models.transformer import MLP, TransformerEncoderLayer  # noqa: E402

OUT = ROOT / "Tests/DetectorsTests/Fixtures/smca_paper_transcription"
D, HEADS, FFN, QUERIES, CLASSES = 32, 4, 32, 12, 5
LAYOUT = ("intra", "multi", "intra")
STRIDES, FACTORS, SMOOTH = (16, 32, 64), (0.5, 1.0, 2.0), 8.0


class DecoderLayer(nn.Module):
    def __init__(self, first):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(D, HEADS)
        self.multihead_attn = nn.MultiheadAttention(D, HEADS)  # its weights; the attention is computed below
        self.linear1, self.linear2 = nn.Linear(D, FFN), nn.Linear(FFN, D)
        self.norm1, self.norm2, self.norm3, self.norm4 = (nn.LayerNorm(D) for _ in range(4))
        if first:
            self.point1 = MLP(D, D, 2, 3)
        self.point2 = nn.Linear(D, 2 * HEADS * 3)  # per segment and head: (dx, dy)
        self.point3 = nn.Linear(D, 2 * HEADS * 3)  # per segment and head: (sx, sy), squared
        self.point4 = nn.Linear(D, 3)  # scale selection

    def forward(self, tgt, query_pos, memory, pos, mask, maps, centre, image_wh):
        queries, batch = tgt.shape[:2]
        u = self.norm4(tgt + query_pos)
        offsets = self.point2(u).view(queries, batch, 3, HEADS, 2)
        scales = self.point3(u).pow(2).view(queries, batch, 3, HEADS, 2)
        selection = self.point4(u).softmax(-1)  # [queries, batch, 3]
        q = tgt + query_pos
        tgt = self.norm1(tgt + self.self_attn(q, q, tgt)[0])
        logits = None
        if centre is None:
            logits = self.point1(u)
            centre = logits.sigmoid()
        w_q, w_k, w_v = self.multihead_attn.in_proj_weight.chunk(3)
        b_q, b_k, b_v = self.multihead_attn.in_proj_bias.chunk(3)
        head_dim = D // HEADS
        split = lambda x: x.view(x.shape[0], batch, HEADS, head_dim).permute(1, 2, 0, 3)  # [batch, heads, n, head_dim]
        qh = split(F.linear(tgt + query_pos, w_q, b_q)) * head_dim ** -0.5
        kh = split(F.linear(memory + pos, w_k, b_k))
        vh = split(F.linear(memory, w_v, b_v))
        scores = (qh @ kh.transpose(-1, -2)).masked_fill(mask[:, None, None, :], float("-inf"))  # [batch, heads, queries, keys]
        parts, start = [], 0
        for s, (height, width) in enumerate(maps):
            count = height * width
            index = torch.arange(count)
            cells = torch.stack([index % width, index // width], -1).float()  # (x, y) of every key
            points = centre[:, :, None, :] * image_wh[None, :, None, :] / STRIDES[s] + offsets[:, :, s]  # [queries, batch, heads, 2]
            squared = (points[:, :, :, None, :] - cells) ** 2  # [queries, batch, heads, keys, 2]
            distance = (squared * scales[:, :, s, :, None, :]).sum(-1) * FACTORS[s]
            prior = (-distance / SMOOTH).permute(1, 2, 0, 3)
            weight = selection[:, :, s].permute(1, 0)[:, None, :, None]  # [batch, 1, queries, 1]
            parts.append((scores[..., start:start + count] + prior).softmax(-1) * weight)
            start += count
        attended = (torch.cat(parts, -1) @ vh).permute(2, 0, 1, 3).reshape(queries, batch, D)
        tgt = self.norm2(tgt + self.multihead_attn.out_proj(attended))
        tgt = self.norm3(tgt + self.linear2(F.relu(self.linear1(tgt))))
        return tgt, logits, centre


class PaperSMCA(nn.Module):
    def __init__(self):
        super().__init__()
        net = torchvision.models.resnet18(weights=None, norm_layer=FrozenBatchNorm2d)
        net.inplanes = 16
        net.conv1 = nn.Conv2d(3, 16, 7, 2, 3, bias=False)
        net.bn1 = FrozenBatchNorm2d(16)
        for index, width in enumerate((16, 32, 64, 128)):
            setattr(net, f"layer{index + 1}", net._make_layer(BasicBlock, width, 1, stride=1 if index == 0 else 2))
        self.backbone = nn.Module()
        self.backbone.add_module("0", nn.Module())
        getattr(self.backbone, "0").body = IntermediateLayerGetter(net, {"layer3": "c4", "layer4": "c5"})
        self.input_proj_1024, self.input_proj_2048 = nn.Conv2d(64, D, 1), nn.Conv2d(128, D, 1)
        self.input_proj_2048_3 = nn.Conv2d(128, D, 3, 2, 1)
        self.transformer = nn.Module()
        self.transformer.level_embed = nn.Parameter(torch.randn(3, D))
        self.transformer.encoder = nn.Module()
        self.transformer.encoder.layers = nn.ModuleList(TransformerEncoderLayer(D, HEADS, FFN, 0.0) for _ in LAYOUT)
        self.transformer.decoder = nn.Module()
        self.transformer.decoder.layers = nn.ModuleList(DecoderLayer(i == 0) for i in range(2))
        self.transformer.decoder.norm = nn.LayerNorm(D)
        self.query_embed = nn.Embedding(QUERIES, D)
        self.class_embed = nn.Linear(D, CLASSES + 1)
        self.bbox_embed = MLP(D, D, 4, 3)
        self.sine = PositionEmbeddingSine(D // 2, normalize=True)

    def forward(self, images, mask, image_wh):
        features = getattr(self.backbone, "0").body(images)
        maps = [self.input_proj_1024(features["c4"]), self.input_proj_2048(features["c5"]), self.input_proj_2048_3(features["c5"])]
        masks = [F.interpolate(mask[None].float(), size=m.shape[-2:]).bool()[0] for m in maps[:2]]
        masks.append(F.interpolate(masks[1][None].float(), size=maps[2].shape[-2:]).bool()[0])
        positions = []
        for level, (m, k) in enumerate(zip(maps, masks)):
            holder = type("Nested", (), {"tensors": m, "mask": k})()
            positions.append(self.sine(holder) + self.transformer.level_embed[level][None, :, None, None])
        tokens = [m.flatten(2).permute(2, 0, 1) for m in maps]
        pos = [p.flatten(2).permute(2, 0, 1) for p in positions]
        flat_masks = [k.flatten(1) for k in masks]
        for layer, kind in zip(self.transformer.encoder.layers, LAYOUT):
            if kind == "intra":
                tokens = [layer(t, src_key_padding_mask=k, pos=p) for t, k, p in zip(tokens, flat_masks, pos)]
            else:
                joint = layer(torch.cat(tokens), src_key_padding_mask=torch.cat(flat_masks, 1), pos=torch.cat(pos))
                tokens = list(joint.split([t.shape[0] for t in tokens]))
        memory, memory_pos, memory_mask = torch.cat(tokens), torch.cat(pos), torch.cat(flat_masks, 1)
        query_pos = self.query_embed.weight[:, None].repeat(1, images.shape[0], 1)
        tgt, centre, centre_logits, outputs = torch.zeros_like(query_pos), None, None, []
        for layer in self.transformer.decoder.layers:
            tgt, logits, centre = layer(tgt, query_pos, memory, memory_pos, memory_mask, [m.shape[-2:] for m in maps], centre, image_wh)
            if logits is not None:
                centre_logits = logits.transpose(0, 1)
            hidden = self.transformer.decoder.norm(tgt).transpose(0, 1)
            raw = self.bbox_embed(hidden)
            boxes = torch.cat([raw[..., :2] + centre_logits, raw[..., 2:]], -1).sigmoid()
            outputs.append((self.class_embed(hidden), boxes))
        return outputs


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    model = PaperSMCA().eval()
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, value in model.state_dict().items():
            if name.endswith("running_var"):
                value.copy_(torch.rand(value.shape, generator=generator) * 0.5 + 0.75)
            elif value.is_floating_point():
                value.add_(torch.randn(value.shape, generator=generator) * (0.3 if ".point3." in name else 0.05))
    sizes = [(192, 256), (160, 224)]
    images = torch.zeros(2, 3, *sizes[0])
    mask = torch.ones(2, *sizes[0], dtype=torch.bool)
    for index, (height, width) in enumerate(sizes):
        images[index, :, :height, :width] = torch.randn((3, height, width), generator=generator).half().float()
        mask[index, :height, :width] = False
    image_wh = torch.tensor([[w, h] for h, w in sizes], dtype=torch.float32)
    with torch.no_grad():
        outputs = model(images, mask, image_wh)
    state = {k: v.contiguous() for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    save_file(state, str(OUT / "model.safetensors"))
    golden = {"images": images.half(), "logits": torch.stack([o[0] for o in outputs]), "boxes": torch.stack([o[1] for o in outputs])}
    save_file({k: v.contiguous() for k, v in golden.items()}, str(OUT / "golden.safetensors"))
    meta = {"made_by": f"Scripts/goldens/make_smca_paper_goldens.py, torch {torch.__version__}", "image_sizes": sizes,
            "hidden_dim": D, "heads": HEADS, "feed_forward": FFN, "queries": QUERIES, "classes": CLASSES, "layout": list(LAYOUT)}
    (OUT / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    print("logits", tuple(golden["logits"].shape), "boxes mean", float(golden["boxes"].mean()))


if __name__ == "__main__":
    main()
