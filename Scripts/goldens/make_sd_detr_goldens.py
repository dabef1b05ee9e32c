"""Golden tensors of SD-DETR, whose code was never released, from an independent PyTorch
transcription of the project's spec (shared/spec sd-detr-dsa-retinanet.md, 4.2 for Conditional
DETR's layers and 4.4 (a)-(f) for the reconstruction), for Tests/DetectorsTests/Fixtures/sd_detr_transcription/.

Written from the spec with plain torch functions, not from swift-detr's code. It starts at the
encoder output (memory, its sine positions and padding mask), since the backbone and encoder are
Conditional DETR's, which the transformers parity test covers. A small decoder: 32 wide, 4 heads,
feed-forward 64, 2 layers, 10 queries, 5 classes, M = 3 points per branch, mini-detector towers of
one conv layer, random weights (offsets and box heads included, so that nothing sits at its
initialization). Two images on a 6 x 7 map, the second padded to 5 x 4 valid cells.

Three variants, each with its own weights:
  channel   task-aware queries, split cross-attention, channel-concatenated self-attention, full-box reference
  token     task-aware queries, split cross-attention, token-concatenated self-attention, shared key/value
            projections, centre reference
  two       learned queries (no mini-detector), two full decoders, centre reference
and the alignment loss with both weightings on fixed matches, with its gradient.

Writes <variant>.safetensors (swift-detr's keys: the decoder side), golden.safetensors, meta.json.

Run: "$(Scripts/reference-env.sh)" Scripts/goldens/make_sd_detr_goldens.py
"""
import json
import math
import pathlib

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "Tests/DetectorsTests/Fixtures/sd_detr_transcription"
D, HEADS, FF, K, N, M, LAYERS = 32, 4, 64, 5, 10, 3, 2
H, W, B = 6, 7, 2


class Weights(dict):
    """Random weights created on first use, by key."""

    def get_tensor(self, key, shape, scale):
        if key not in self:
            self[key] = torch.randn(shape) * scale
        return self[key]

    def linear(self, x, name, i, o):
        w = self.get_tensor(f"{name}.weight", (o, i), 1 / math.sqrt(i))
        b = self.get_tensor(f"{name}.bias", (o,), 0.1)
        return x @ w.T + b

    def mlp(self, x, name, i, hidden, o, layers):
        dims = [i] + [hidden] * (layers - 1) + [o]
        for n in range(layers):
            x = self.linear(x, f"{name}.layers.{n}", dims[n], dims[n + 1])
            if n < layers - 1:
                x = x.relu()
        return x

    def layer_norm(self, x, name):
        w = self.get_tensor(f"{name}.weight", (x.shape[-1],), 0.1) + 1 if f"{name}.weight" not in self else self[f"{name}.weight"]
        self[f"{name}.weight"] = w
        b = self.get_tensor(f"{name}.bias", (x.shape[-1],), 0.1)
        return F.layer_norm(x, (x.shape[-1],), w, b, 1e-5)

    def group_norm(self, x, name):
        c = x.shape[1]
        w = self.get_tensor(f"{name}.weight", (c,), 0.1) + 1 if f"{name}.weight" not in self else self[f"{name}.weight"]
        self[f"{name}.weight"] = w
        b = self.get_tensor(f"{name}.bias", (c,), 0.1)
        return F.group_norm(x, 32, w, b, 1e-5)

    def conv3(self, x, name):
        c = x.shape[1]
        w = self.get_tensor(f"{name}.weight", (c, c, 3, 3), 1 / math.sqrt(9 * c))
        b = self.get_tensor(f"{name}.bias", (c,), 0.1)
        return F.conv2d(x, w, b, padding=1)


def inverse_sigmoid(x, eps=1e-5):
    x = x.clamp(0, 1)
    return torch.log(x.clamp(min=eps) / (1 - x).clamp(min=eps))


def sine(points, features):
    """Conditional DETR's point embedding: (x, y) in [0, 1] -> [..., 2 * features], y half first."""
    dim_t = torch.arange(features, dtype=torch.float32)
    dim_t = 10000 ** (2 * torch.div(dim_t, 2, rounding_mode="floor") / features)
    halves = []
    for axis in (1, 0):
        angles = points[..., axis, None] * 2 * math.pi / dim_t
        halves.append(torch.stack((angles[..., 0::2].sin(), angles[..., 1::2].cos()), dim=-1).flatten(-2))
    return torch.cat(halves, dim=-1)


def attention(q, k, v, heads, mask, w, out_name):
    """q [L, B, Dq], k [S, B, Dq], v [S, B, Dv]; softmax over S with 1/sqrt(Dq / heads); out projection."""
    length, batch, dq = q.shape
    s, dv = k.shape[0], v.shape[2]
    qh = q.reshape(length, batch, heads, dq // heads).permute(1, 2, 0, 3)
    kh = k.reshape(s, batch, heads, dq // heads).permute(1, 2, 0, 3)
    vh = v.reshape(s, batch, heads, dv // heads).permute(1, 2, 0, 3)
    logits = qh @ kh.transpose(-1, -2) / math.sqrt(dq // heads)
    if mask is not None:
        logits = logits.masked_fill(mask[:, None, None, :], float("-inf"))
    out = (logits.softmax(-1) @ vh).permute(2, 0, 1, 3).reshape(length, batch, dv)
    return w.linear(out, out_name, dv, dv)


def self_attention(w, p, x, pos):
    dim = x.shape[-1]
    q = w.linear(x, f"{p}.sa_qcontent_proj", dim, dim) + w.linear(pos, f"{p}.sa_qpos_proj", dim, dim)
    k = w.linear(x, f"{p}.sa_kcontent_proj", dim, dim) + w.linear(pos, f"{p}.sa_kpos_proj", dim, dim)
    v = w.linear(x, f"{p}.sa_v_proj", dim, dim)
    return w.layer_norm(x + attention(q, k, v, HEADS, None, w, f"{p}.self_attn.out_proj"), f"{p}.norm1")


def cross_attention(w, p, x, memory, memory_pos, mask, query_pos, query_sine, first, kv):
    """Conditional DETR's cross-attention with per-head [content; spatial] queries and keys, then the FFN."""
    nq, batch, dim = x.shape
    hw = memory.shape[0]
    q = w.linear(x, f"{p}.ca_qcontent_proj", dim, dim)
    k = w.linear(memory, f"{kv}.ca_kcontent_proj", dim, dim)
    kp = w.linear(memory_pos, f"{kv}.ca_kpos_proj", dim, dim)
    if first:
        q = q + w.linear(query_pos, f"{p}.ca_qpos_proj", dim, dim)
        k = k + kp
    qs = w.linear(query_sine, f"{p}.ca_qpos_sine_proj", dim, dim)
    hd = dim // HEADS
    query = torch.cat([q.view(nq, batch, HEADS, hd), qs.view(nq, batch, HEADS, hd)], 3).view(nq, batch, 2 * dim)
    key = torch.cat([k.view(hw, batch, HEADS, hd), kp.view(hw, batch, HEADS, hd)], 3).view(hw, batch, 2 * dim)
    v = w.linear(memory, f"{kv}.ca_v_proj", dim, dim)
    x = w.layer_norm(x + attention(query, key, v, HEADS, mask, w, f"{p}.cross_attn.out_proj"), f"{p}.norm2")
    hidden = w.linear(x, f"{p}.linear1", dim, FF).relu()
    return w.layer_norm(x + w.linear(hidden, f"{p}.linear2", FF, dim), f"{p}.norm3")


def mini_detector(w, memory, mask2d):
    """Spec 4.4(a): towers, per-cell class logits and boxes around the cell centre with side 0.05."""
    cells = lambda f: f.flatten(2).transpose(1, 2)  # noqa: E731
    fmap = memory.permute(1, 2, 0).reshape(B, D, H, W)
    cls_f = w.group_norm(w.conv3(fmap, "transformer.mini_detector.cls_tower.0.conv"), "transformer.mini_detector.cls_tower.0.norm").relu()
    box_f = w.group_norm(w.conv3(fmap, "transformer.mini_detector.box_tower.0.conv"), "transformer.mini_detector.box_tower.0.norm").relu()
    valid_w = (~mask2d[:, 0, :]).sum(1).float()
    valid_h = (~mask2d[:, :, 0]).sum(1).float()
    ratios = torch.stack([valid_w / W, valid_h / H], 1)
    ys, xs = torch.meshgrid(torch.arange(H, dtype=torch.float32) + 0.5, torch.arange(W, dtype=torch.float32) + 0.5, indexing="ij")
    centres = torch.stack([xs.reshape(-1)[None] / valid_w[:, None], ys.reshape(-1)[None] / valid_h[:, None]], -1)
    prior = inverse_sigmoid(torch.cat([centres, torch.full_like(centres, 0.05)], -1))
    logits = w.linear(cells(cls_f), "transformer.mini_detector.class_embed", D, K)
    logits = logits.masked_fill(mask2d.flatten(1)[..., None], -100.0)
    boxes = (w.mlp(cells(box_f), "transformer.mini_detector.bbox_embed", D, D, 4, 3) + prior).sigmoid()
    return logits, boxes, cls_f, box_f, ratios


def task_query(w, name, cell_features, boxes, features, ratios, at_centre):
    """Spec 4.4(b): M points in the box, bilinear samples averaged; position from the sine of the query's point."""
    centre, wh = boxes[..., :2], boxes[..., 2:]
    offsets = w.linear(cell_features, f"transformer.task_queries.{name}_offsets", D, 2 * M).view(B, N, M, 2)
    points = centre[:, :, None] + offsets.tanh() * wh[:, :, None] / 2
    grid = 2 * points * ratios[:, None, None, :] - 1
    content = F.grid_sample(features, grid, mode="bilinear", padding_mode="zeros", align_corners=False).mean(-1).transpose(1, 2)
    point = centre if at_centre else points.mean(2)
    s = sine(point.transpose(0, 1), D // 2)
    position = w.mlp(s, f"transformer.task_queries.{name}_position", D, D, D, 2)
    return dict(content=content.transpose(0, 1), position=position, sine=s, points=points, point=point)


def run(variant, memory, memory_pos, mask2d):
    w = Weights()
    mask = mask2d.flatten(1)
    out = {}
    kinds = ["cls", "loc"]
    if variant in ("channel", "token"):
        logits, boxes, cls_f, box_f, ratios = mini_detector(w, memory, mask2d)
        scores = logits.max(-1).values.masked_fill(mask, float("-inf"))
        selected = scores.topk(N, dim=1).indices
        ref = boxes.gather(1, selected[..., None].expand(-1, -1, 4))
        cell_features = memory.transpose(0, 1).gather(1, selected[..., None].expand(-1, -1, D))
        queries = [task_query(w, "cls", cell_features, ref, cls_f, ratios, False), task_query(w, "loc", cell_features, ref, box_f, ratios, True)]
        out.update(cell_logits=logits, cell_boxes=boxes, selected=selected.float(), reference_boxes=ref)
        out.update(cls_points=queries[0]["points"], loc_points=queries[1]["points"])
        out.update(cls_content=queries[0]["content"], loc_content=queries[1]["content"])
        reference = inverse_sigmoid(ref) if variant == "channel" else inverse_sigmoid(queries[1]["point"])
    else:
        table = w.get_tensor("query_embed.weight", (N, D), 1.0)
        position = table[:, None].expand(N, B, D)
        ref_point = w.mlp(position, "transformer.decoder.ref_point_head", D, D, 2, 2).sigmoid()
        q = dict(content=torch.zeros_like(position), position=position, sine=sine(ref_point, D // 2), point=ref_point.transpose(0, 1))
        queries = [q, q]
        reference = inverse_sigmoid(q["point"])
    contents = [q["content"] for q in queries]
    for layer in range(LAYERS):
        p = f"transformer.decoder.layers.{layer}"
        sines = [
            q["sine"] if layer == 0 else q["sine"] * w.mlp(c, f"transformer.decoder.{k}_query_scale", D, D, D, 2)
            for q, c, k in zip(queries, contents, kinds)
        ]
        positions = [q["position"] for q in queries]
        if variant == "two":
            contents = [
                cross_attention(
                    w, f"{p}.{k}", self_attention(w, f"{p}.{k}", c, pos), memory, memory_pos, mask, pos, s, layer == 0, f"{p}.{k}")
                for k, c, pos, s in zip(kinds, contents, positions, sines)
            ]
        else:
            if variant == "channel":
                attended = self_attention(w, p, torch.cat(contents, 2), torch.cat(positions, 2)).split(D, 2)
            else:
                attended = self_attention(w, p, torch.cat(contents, 0), torch.cat(positions, 0)).split(N, 0)
            contents = [
                cross_attention(
                    w, f"{p}.{k}", c, memory, memory_pos, mask, pos, s, layer == 0, f"{p}.cls" if variant == "token" else f"{p}.{k}")
                for k, c, pos, s in zip(kinds, attended, positions, sines)
            ]
        normalized = [w.layer_norm(c, f"transformer.decoder.{k}_norm").transpose(0, 1) for c, k in zip(contents, kinds)]
        offsets = w.mlp(normalized[1], "bbox_embed", D, D, 4, 3)
        if reference.shape[-1] == 4:
            layer_boxes = (offsets + reference).sigmoid()
        else:
            layer_boxes = torch.cat([offsets[..., :2] + reference, offsets[..., 2:]], -1).sigmoid()
        out[f"logits_{layer}"] = w.linear(normalized[0], "class_embed", D, K)
        out[f"boxes_{layer}"] = layer_boxes
    return w, {f"{variant}.{k}": v.contiguous() for k, v in out.items()}


def box_corners(b):
    return torch.cat([b[..., :2] - b[..., 2:] / 2, b[..., :2] + b[..., 2:] / 2], -1)


def alignment_loss(logits, boxes, matches, labels, targets, box_count, quality_focal):
    """Spec 4.4(e): t = max(s^0.25 u^0.75, 0.01) on matches (s, u detached); BCE weighted by |t - p|^2
    (quality focal) or 1 on matches and p^2 elsewhere; summed, divided by the number of boxes."""
    soft = torch.zeros_like(logits)
    positive = torch.zeros_like(logits)
    for (image, query, target), label in zip(matches, labels):
        s = logits[image, query, label].detach().sigmoid()
        a, b = box_corners(boxes[image, query].detach()), box_corners(targets[target])
        inter = (torch.min(a[2:], b[2:]) - torch.max(a[:2], b[:2])).clamp(min=0).prod()
        union = (a[2:] - a[:2]).prod() + (b[2:] - b[:2]).prod() - inter
        soft[image, query, label] = (s**0.25 * (inter / union) ** 0.75).clamp(min=0.01)
        positive[image, query, label] = 1
    p = logits.sigmoid()
    bce = F.binary_cross_entropy_with_logits(logits, soft, reduction="none")
    weight = positive * ((soft - p).abs() ** 2 if quality_focal else 1) + (1 - positive) * p**2
    return (bce * weight).sum() / box_count


def main():
    torch.manual_seed(0)
    OUT.mkdir(parents=True, exist_ok=True)
    mask2d = torch.zeros(B, H, W, dtype=torch.bool)
    mask2d[1, 5:, :] = True
    mask2d[1, :, 4:] = True
    memory = torch.randn(H * W, B, D)
    memory_pos = torch.randn(H * W, B, D)
    golden = {"memory": memory, "memory_position": memory_pos, "mask": mask2d.to(torch.uint8)}
    with torch.no_grad():
        for variant in ("channel", "token", "two"):
            weights, outputs = run(variant, memory, memory_pos, mask2d)
            save_file({k: v.contiguous() for k, v in weights.items()}, OUT / f"{variant}.safetensors")
            golden.update(outputs)

    logits = torch.randn(2, 6, K) * 2
    boxes = torch.cat([torch.rand(2, 6, 2) * 0.5 + 0.25, torch.rand(2, 6, 2) * 0.3 + 0.1], -1)
    targets = torch.tensor([[0.4, 0.5, 0.3, 0.2], [0.6, 0.4, 0.2, 0.3], [0.5, 0.5, 0.4, 0.4]])
    target_labels = torch.tensor([1, 3, 4])
    matches = [(0, 4, 0), (0, 1, 1), (1, 2, 2)]
    labels = [int(target_labels[t]) for _, _, t in matches]
    golden.update(alignment_logits=logits, alignment_boxes=boxes, alignment_targets=targets, alignment_labels=target_labels.float())
    for name, quality_focal in (("quality_focal", True), ("ia_bce", False)):
        x = logits.clone().requires_grad_(True)
        loss = alignment_loss(x, boxes, matches, labels, targets, 3.0, quality_focal)
        loss.backward()
        golden[f"alignment_{name}_loss"] = loss.detach().reshape(1)
        golden[f"alignment_{name}_gradient"] = x.grad
    save_file({k: v.contiguous() for k, v in golden.items()}, OUT / "golden.safetensors")
    meta = {"script": "Scripts/goldens/make_sd_detr_goldens.py", "torch": torch.__version__, "matches": matches, "box_count": 3}
    (OUT / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")


if __name__ == "__main__":
    main()
