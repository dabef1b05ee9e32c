"""Writes the fixtures of `detr train --backbone-weights`: ImageNet-style ResNet weight files in the layouts users
download, for a ResNet-50-shaped network (bottleneck blocks, 3/4/6/3 per stage) made narrow to stay small (stem 8,
stage outputs 16/32/64/128), with random weights and batch-norm statistics, and each network's stage-4 features on
one image.

  torchvision.pth          torchvision.models.ResNet's state dict, saved bare as torchvision's released files are
  timm.safetensors         the same tensors in a safetensors file (timm's ResNets use torchvision's names)
  transformers.safetensors transformers' ResNetForImageClassification (embedder / encoder.stages names), as
                           save_pretrained writes model.safetensors
  golden.safetensors       the input image and each network's stage-4 output (eval mode)

Run: "$(Scripts/reference/smca/env.sh)" Scripts/goldens/make_backbone_weight_fixtures.py   (torch, torchvision, transformers)
Writes Tests/DETRCommandsTests/Fixtures/backbone_weights/; meta.json names this script and the versions.
"""
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "Scripts/reference/detrex"))
import tv_cpu_shim  # noqa: F401,E402  (must precede torchvision)

import torch  # noqa: E402
import torchvision  # noqa: E402
import transformers  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from torch import nn  # noqa: E402
from torchvision.models.resnet import Bottleneck  # noqa: E402

OUT = ROOT / "Tests/DETRCommandsTests/Fixtures/backbone_weights"
OUT.mkdir(parents=True, exist_ok=True)
torch.manual_seed(0)


def randomize_statistics(model, seed):
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, buffer in model.named_buffers():
            if name.endswith("running_var"):
                buffer.copy_(torch.rand(buffer.shape, generator=generator) * 0.5 + 0.75)
            elif name.endswith("running_mean"):
                buffer.copy_(torch.randn(buffer.shape, generator=generator) * 0.1)
        for name, parameter in model.named_parameters():
            if "bn" in name or "downsample.1" in name or "normalization" in name:
                parameter.add_(torch.randn(parameter.shape, generator=generator) * 0.1)


# torchvision's ResNet-50 layout, narrow.
net = torchvision.models.resnet50(weights=None)
net.inplanes = 8
net.conv1 = nn.Conv2d(3, 8, kernel_size=7, stride=2, padding=3, bias=False)
net.bn1 = nn.BatchNorm2d(8)
for index, (planes, blocks) in enumerate(zip((4, 8, 16, 32), (3, 4, 6, 3))):
    setattr(net, f"layer{index + 1}", net._make_layer(Bottleneck, planes, blocks, stride=1 if index == 0 else 2))
net.fc = nn.Linear(128, 10)
randomize_statistics(net, 1)
net.eval()
state = net.state_dict()
torch.save(state, OUT / "torchvision.pth")
save_file({k: v.contiguous() for k, v in state.items()}, OUT / "timm.safetensors")

image = torch.randn(1, 3, 64, 96, generator=torch.Generator().manual_seed(2))
with torch.no_grad():
    x = net.maxpool(net.relu(net.bn1(net.conv1(image))))
    torchvision_features = net.layer4(net.layer3(net.layer2(net.layer1(x))))

# transformers' ResNet of the same shape.
config = transformers.ResNetConfig(embedding_size=8, hidden_sizes=[16, 32, 64, 128], depths=[3, 4, 6, 3], layer_type="bottleneck",
                                   num_labels=10)
hf = transformers.ResNetForImageClassification(config)
randomize_statistics(hf, 3)
hf.eval()
save_file({k: v.contiguous() for k, v in hf.state_dict().items()}, OUT / "transformers.safetensors", metadata={"format": "pt"})
with torch.no_grad():
    transformers_features = hf.resnet(image).last_hidden_state

save_file({"image": image, "torchvision.features": torchvision_features.contiguous(),
           "transformers.features": transformers_features.contiguous()}, OUT / "golden.safetensors")
(OUT / "meta.json").write_text(json.dumps({
    "made_by": "Scripts/goldens/make_backbone_weight_fixtures.py", "torch": torch.__version__,
    "torchvision": torchvision.__version__, "transformers": transformers.__version__}, indent=1))
for path in sorted(OUT.iterdir()):
    print(path.name, path.stat().st_size)
