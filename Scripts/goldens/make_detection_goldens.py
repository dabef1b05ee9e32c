"""Writes golden files for the Detection tests: scipy's linear_sum_assignment on many kinds of cost
matrices, and transformers' box ops and Hungarian matchers (DETR softmax cost, Deformable focal cost).

Run: "$(Scripts/reference-env.sh)" Scripts/goldens/make_detection_goldens.py
Metadata records this script and the scipy, torch and transformers versions.
"""
import pathlib

import numpy as np
import scipy
import torch
import transformers
from safetensors.torch import save_file
from scipy.optimize import linear_sum_assignment
from transformers.loss.loss_deformable_detr import DeformableDetrHungarianMatcher, DeformableDetrImageLoss
from transformers.loss.loss_for_object_detection import HungarianMatcher, ImageLoss, box_iou, generalized_box_iou

OUT = pathlib.Path(__file__).resolve().parents[2] / "Tests/DetectionTests/Goldens"
OUT.mkdir(parents=True, exist_ok=True)
rng = np.random.default_rng(7)
tensors = {}
names = []


def lsap(name, cost):
    rows, cols = linear_sum_assignment(cost)
    tensors[f"lsap.{name}.cost"] = torch.from_numpy(np.ascontiguousarray(cost, dtype=np.float64))
    tensors[f"lsap.{name}.rows"] = torch.from_numpy(rows.astype(np.int64))
    tensors[f"lsap.{name}.columns"] = torch.from_numpy(cols.astype(np.int64))
    tensors[f"lsap.{name}.total"] = torch.tensor(float(cost[rows, cols].sum()), dtype=torch.float64)
    names.append(name)


lsap("square", rng.random((7, 7)))
lsap("wide", rng.random((5, 9)))
lsap("tall", rng.random((9, 5)))
lsap("detr_like", rng.random((100, 12)) * 5)
lsap("integer_ties", rng.integers(0, 3, (8, 8)).astype(float))
lsap("wide_ties", rng.integers(0, 2, (6, 10)).astype(float))
lsap("tall_ties", rng.integers(0, 2, (10, 4)).astype(float))
lsap("constant", np.full((5, 5), 3.0))
lsap("zeros_wide", np.zeros((4, 6)))
lsap("negative", rng.random((6, 6)) - 2)
lsap("one_by_one", np.array([[4.5]]))
lsap("one_row", rng.random((1, 6)))
lsap("one_column", rng.random((6, 1)))
with_inf = rng.random((6, 6))
with_inf[0, :5] = np.inf
with_inf[2, 1] = np.inf
lsap("with_infinity", with_inf)
lsap("large", rng.random((60, 60)) * 100)

# Box ops on random valid corner boxes.
torch.manual_seed(3)
a = torch.rand(7, 4)
a[:, 2:] += a[:, :2]
b = torch.rand(5, 4)
b[:, 2:] += b[:, :2]
iou, union = box_iou(a, b)
tensors.update({"boxes.a": a, "boxes.b": b, "boxes.iou": iou, "boxes.union": union, "boxes.giou": generalized_box_iou(a, b)})


def random_targets(sizes, classes):
    targets = []
    for n in sizes:
        centers = torch.rand(n, 2) * 0.6 + 0.2
        sizes_wh = torch.rand(n, 2) * 0.3 + 0.05
        targets.append({"class_labels": torch.randint(0, classes, (n,)), "boxes": torch.cat([centers, sizes_wh], 1)})
    return targets


def matcher_case(name, matcher, batch, queries, classes, sizes):
    logits = torch.randn(batch, queries, classes) * 2
    boxes = torch.sigmoid(torch.randn(batch, queries, 4))
    targets = random_targets(sizes, classes - 1 if isinstance(matcher, HungarianMatcher) and not isinstance(matcher, DeformableDetrHungarianMatcher) else classes)
    indices = matcher({"logits": logits, "pred_boxes": boxes}, targets)
    tensors[f"{name}.logits"] = logits
    tensors[f"{name}.boxes"] = boxes
    for i, (target, (q, t)) in enumerate(zip(targets, indices)):
        tensors[f"{name}.target{i}.labels"] = target["class_labels"]
        tensors[f"{name}.target{i}.boxes"] = target["boxes"]
        tensors[f"{name}.target{i}.queries"] = q
        tensors[f"{name}.target{i}.indices"] = t


matcher_case("detr_matcher", HungarianMatcher(class_cost=1, bbox_cost=5, giou_cost=2), 3, 20, 8, [4, 0, 7])
matcher_case("deformable_matcher", DeformableDetrHungarianMatcher(class_cost=2, bbox_cost=5, giou_cost=2), 2, 30, 5, [6, 3])

def criterion_case(name, criterion, weights, classes, sizes, aux_layers=2):
    """Losses of the final and auxiliary layers, and gradients of the weighted total."""
    torch.manual_seed(len(name))
    layers = [(torch.randn(2, 12, classes).requires_grad_(), torch.sigmoid(torch.randn(2, 12, 4)).requires_grad_()) for _ in range(aux_layers + 1)]
    targets = random_targets(sizes, classes - 1 if isinstance(criterion.matcher, HungarianMatcher) and not isinstance(criterion.matcher, DeformableDetrHungarianMatcher) else classes)
    outputs = {"logits": layers[-1][0], "pred_boxes": layers[-1][1],
               "auxiliary_outputs": [{"logits": l, "pred_boxes": b} for l, b in layers[:-1]]}
    losses = criterion(outputs, targets)
    total = sum(losses[k] * weights[k.rsplit("_", 1)[0] if k[-1].isdigit() else k] for k in losses if not k.startswith("cardinality"))
    total.backward()
    for i, (l, b) in enumerate(layers):
        tensors[f"{name}.layer{i}.logits"] = l.detach()
        tensors[f"{name}.layer{i}.boxes"] = b.detach()
        tensors[f"{name}.layer{i}.logits_grad"] = l.grad
        tensors[f"{name}.layer{i}.boxes_grad"] = b.grad
    for i, t in enumerate(targets):
        tensors[f"{name}.target{i}.labels"] = t["class_labels"]
        tensors[f"{name}.target{i}.boxes"] = t["boxes"]
    for k, v in losses.items():
        tensors[f"{name}.loss.{k}"] = v.detach().reshape(())
    tensors[f"{name}.total"] = total.detach()


weights = {"loss_ce": 1, "loss_bbox": 5, "loss_giou": 2}
criterion_case("detr_loss", ImageLoss(HungarianMatcher(class_cost=1, bbox_cost=5, giou_cost=2), 7, 0.1, ["labels", "boxes", "cardinality"]), weights, 8, [3, 5])
criterion_case("deformable_loss", DeformableDetrImageLoss(DeformableDetrHungarianMatcher(class_cost=2, bbox_cost=5, giou_cost=2), 5, 0.25, ["labels", "boxes"]),
               {"loss_ce": 2, "loss_bbox": 5, "loss_giou": 2}, 5, [4, 2])

meta = {"script": "Scripts/goldens/make_detection_goldens.py", "scipy": scipy.__version__, "torch": torch.__version__,
        "transformers": transformers.__version__, "lsap_cases": ",".join(names)}
save_file({k: v.contiguous() for k, v in tensors.items()}, str(OUT / "detection.safetensors"), metadata=meta)
print("wrote", OUT / "detection.safetensors", len(tensors), "tensors")


def backbone_goldens():
    """Small transformers ResNets (bottleneck and basic) with every parameter and buffer perturbed,
    their outputs at stages 2-4, and DETR-family sine and learned position encodings."""
    from transformers import ResNetBackbone, ResNetConfig
    from transformers.models.deformable_detr.modeling_deformable_detr import DeformableDetrSinePositionEmbedding
    from transformers.models.detr.modeling_detr import DetrLearnedPositionEmbedding, DetrSinePositionEmbedding

    result = {}
    torch.manual_seed(21)
    image = torch.randn(2, 3, 70, 90)
    for name, layer_type, hidden in (("bottleneck", "bottleneck", [16, 32, 64, 128]), ("basic", "basic", [8, 16, 32, 64])):
        config = ResNetConfig(embedding_size=8, hidden_sizes=hidden, depths=[2, 1, 2, 1], layer_type=layer_type,
                              out_features=["stage2", "stage3", "stage4"])
        model = ResNetBackbone(config).eval()
        with torch.no_grad():
            for key, value in model.state_dict().items():
                if key.endswith("convolution.weight"):
                    # He-scaled, so activations keep their magnitude through the stages.
                    value.copy_(torch.randn_like(value) * (2.0 / value[0].numel()) ** 0.5)
                elif value.is_floating_point():
                    value.copy_(torch.randn_like(value) * 0.2 + (1.0 if key.endswith(("running_var", "normalization.weight")) else 0.0))
                    if key.endswith("running_var"):
                        value.abs_().add_(0.1)
            outputs = model(image).feature_maps
        for key, value in model.state_dict().items():
            if not key.endswith("num_batches_tracked"):
                result[f"resnet_{name}.state.{key}"] = value.clone()
        for stage, output in zip((2, 3, 4), outputs):
            result[f"resnet_{name}.stage{stage}"] = output
    result["resnet.image"] = image

    mask = torch.ones(2, 9, 12, dtype=torch.long)
    mask[0, :, 9:] = 0
    mask[1, 6:, :] = 0
    result["position.valid"] = mask
    result["position.detr"] = DetrSinePositionEmbedding(64, normalize=True)((2, 128, 9, 12), "cpu", torch.float32, mask)
    result["position.detr_unnormalized"] = DetrSinePositionEmbedding(64, normalize=False)((2, 128, 9, 12), "cpu", torch.float32, mask)
    result["position.deformable"] = DeformableDetrSinePositionEmbedding(64, normalize=True)((2, 128, 9, 12), "cpu", torch.float32, mask)
    learned = DetrLearnedPositionEmbedding(64)
    result["position.row_embed"] = learned.row_embeddings.weight.detach().clone()
    result["position.col_embed"] = learned.column_embeddings.weight.detach().clone()
    result["position.learned"] = learned((2, 128, 9, 12), "cpu", torch.float32).detach()
    meta = {"script": "Scripts/goldens/make_detection_goldens.py", "torch": torch.__version__, "transformers": transformers.__version__}
    save_file({k: v.contiguous() for k, v in result.items()}, str(OUT / "backbone.safetensors"), metadata=meta)
    print("wrote", OUT / "backbone.safetensors", len(result), "tensors")


backbone_goldens()
