"""``cifar10-resnet``: CIFAR-10 read from the user's files (:func:`optimlab.tasks.files.load_cifar10`)
with a small ResNet written here (He et al. 2016's CIFAR family, no torchvision).

The network: conv3x3(3 -> w) + BatchNorm + ReLU, then three stages of ``blocks`` basic residual
blocks (two conv3x3 + BatchNorm, identity shortcut; a 1x1 conv + BatchNorm shortcut where the
stage halves the resolution and doubles the width: w, 2w, 4w), global average pooling and a
linear layer. ``blocks=3, width=16`` is ResNet-20 (0.27 M parameters); the default
``blocks=1, width=16`` (ResNet-8, 78 k parameters) is the laptop-sized one. No data
augmentation: the engine trains on the tensors as stored.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from .datasets import CLASSIFICATION
from .files import load_cifar10
from .models import check_init
from .module_task import ModuleTask
from .task import Split, split_dataset, standardize_split

MODEL_OPTIONS = ("blocks", "width")


class BasicBlock(nn.Module):
    """relu(BN(conv(relu(BN(conv(x))))) + shortcut(x)); the shortcut projects when the shape changes."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet(nn.Module):
    """A CIFAR ResNet of depth 6 * blocks + 2 (see the module docstring)."""

    def __init__(self, num_classes: int = 10, blocks: int = 1, width: int = 16, in_channels: int = 3) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU())
        layers: list[nn.Module] = []
        channels = width
        for stage in range(3):
            out_channels = width * 2 ** stage
            for index in range(blocks):
                layers.append(BasicBlock(channels, out_channels, 2 if stage > 0 and index == 0 else 1))
                channels = out_channels
        self.stages = nn.Sequential(*layers)
        self.head = nn.Linear(channels, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.stages(self.stem(x))
        return self.head(features.mean(dim=(2, 3)))


def build_cifar10_resnet(*, data_dir: str | None = None, seed: int = 0, init: str | None = None,
                         val_fraction: float | None = None, standardize: bool = True,
                         dtype: torch.dtype = torch.float32, l2: float = 0.0, limit: int | None = None,
                         name: str | None = None, **options: Any) -> ModuleTask:
    """Task ``cifar10-resnet`` from the CIFAR-10 python batches in ``data_dir`` (5,000 of the
    50,000 training images held out for validation; the 10,000 test images are the test split)."""
    unknown = sorted(set(options) - set(MODEL_OPTIONS))
    if unknown:
        raise ValueError(f"unknown option {unknown[0]!r} for task cifar10-resnet; allowed: blocks, width, l2")
    if l2 < 0:
        raise ValueError(f"l2={l2!r} must be >= 0")
    if not data_dir:
        raise ValueError("task cifar10-resnet reads the CIFAR-10 python batches from your disk: pass --data-dir DIR "
                         "(the folder holding cifar-10-batches-py or data_batch_1..5 and test_batch)")
    model_options = {key: int(value) for key, value in options.items()}
    dataset = load_cifar10(data_dir)
    split = split_dataset(dataset, 0.1 if val_fraction is None else val_fraction, 0.0, seed)
    if limit is not None:
        if limit < 1:
            raise ValueError(f"limit={limit!r} must be a positive number of training rows")
        split.x_train, split.y_train = split.x_train[:limit], split.y_train[:limit]
    if standardize:
        split = standardize_split(split, targets=False)
    split = Split(*(t.to(dtype) if t.is_floating_point() else t for t in (
        split.x_train, split.y_train, split.x_val, split.y_val, split.x_test, split.y_test)))
    init = check_init(init or "default")
    return ModuleTask(name=name or "cifar10-resnet", kind=CLASSIFICATION, split=split, model_kind="resnet",
                      num_classes=dataset.num_classes, init=init, l2=l2, model_options=model_options,
                      default_batch_size=128, default_epochs=10,
                      description=f"{dataset.description}; model: ResNet-{6 * model_options.get('blocks', 1) + 2}",
                      options={"seed": seed, "init": init, "l2": l2, "limit": limit, "data_dir": data_dir,
                               "val_fraction": val_fraction, "standardize": standardize, **model_options},
                      model_factory=lambda: ResNet(dataset.num_classes, **model_options))


__all__ = ["ResNet", "BasicBlock", "build_cifar10_resnet"]
