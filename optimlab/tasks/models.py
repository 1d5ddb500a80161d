"""Models: linear and softmax regression (the convex cases), an MLP, a small CNN; and their
initialization (torch's default, Xavier, Kaiming, deliberately too small or too large).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..spec import parse_spec

MODELS = ("linear", "softmax", "mlp", "cnn")
INITS = ("default", "xavier", "kaiming", "too-small", "too-large", "normal:std=S")
TOO_SMALL_STD = 1e-3  # activations and gradients vanish layer by layer
TOO_LARGE_STD = 1.0   # ~sqrt(fan_in) times Xavier's scale: activations saturate or explode


class LinearRegression(nn.Module):
    """y_hat = x w + b on flattened inputs; one output, squeezed to shape (N,)."""

    def __init__(self, in_features: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1)).squeeze(-1)


class SoftmaxRegression(nn.Module):
    """Logits x W + b on flattened inputs (the softmax lives in the cross-entropy loss)."""

    def __init__(self, in_features: int, num_classes: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1))


class MLP(nn.Module):
    """Flatten, then ``depth`` hidden layers of ``hidden`` ReLU units, then a linear output."""

    def __init__(self, in_features: int, out_features: int, hidden: int = 64, depth: int = 1) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        layers.append(nn.Linear(width, out_features))
        self.net = nn.Sequential(*layers)
        self.squeeze = out_features == 1  # regression: shape (N,)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x)
        return out.squeeze(-1) if self.squeeze else out


class SmallCNN(nn.Module):
    """conv3x3(C->8) ReLU maxpool2, conv3x3(8->16) ReLU maxpool2, linear to the classes."""

    def __init__(self, input_shape: tuple[int, int, int], num_classes: int, channels: int = 8) -> None:
        super().__init__()
        in_channels = input_shape[0]
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(channels, 2 * channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(),
        )
        with torch.no_grad():
            flat = self.features(torch.zeros(1, *input_shape)).shape[1]
        self.classifier = nn.Linear(flat, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def build_model(kind: str, input_shape: tuple[int, ...], out_features: int, **options: int) -> nn.Module:
    """A model by name; ``out_features`` is 1 for regression, the number of classes otherwise."""
    in_features = math.prod(input_shape)
    if kind == "linear":
        return LinearRegression(in_features)
    if kind == "softmax":
        return SoftmaxRegression(in_features, out_features)
    if kind == "mlp":
        return MLP(in_features, out_features, **options)
    if kind == "cnn":
        if len(input_shape) != 3:
            raise ValueError(f"model 'cnn' needs image inputs (C, H, W), got input shape {tuple(input_shape)}")
        return SmallCNN(tuple(input_shape), out_features, **options)  # type: ignore[arg-type]
    raise ValueError(f"unknown model {kind!r}; choose one of: {', '.join(MODELS)}")


def check_init(init: str) -> str:
    """Validate an init name (or ``normal:std=S``) at the door."""
    parsed = parse_spec(init, "init")
    if parsed.name == "normal":
        std = parsed.kwargs.get("std")
        if set(parsed.kwargs) != {"std"} or not isinstance(std, (int, float)) or std < 0:
            raise ValueError(f"init {init!r}: expected normal:std=S with S >= 0")
    elif parsed.name not in INITS or parsed.kwargs:
        raise ValueError(f"unknown init {init!r}; choose one of: {', '.join(INITS)}")
    return init


def initialize(model: nn.Module, init: str) -> nn.Module:
    """Re-initialize every Linear/Conv weight in place; biases become zero (except 'default').

    xavier: N(0, 2/(fan_in+fan_out)); kaiming: N(0, 2/fan_in) (ReLU gain); too-small /
    too-large: N(0, 1e-3^2) / N(0, 1); normal:std=S: N(0, S^2); default: torch's own init.
    """
    parsed = parse_spec(check_init(init), "init")
    if parsed.name == "default":
        return model
    for module in model.modules():
        if not isinstance(module, (nn.Linear, nn.Conv2d)):
            continue
        weight = module.weight
        with torch.no_grad():
            if parsed.name == "xavier":
                nn.init.xavier_normal_(weight)
            elif parsed.name == "kaiming":
                nn.init.kaiming_normal_(weight, nonlinearity="relu")
            else:
                std = {"too-small": TOO_SMALL_STD, "too-large": TOO_LARGE_STD}.get(parsed.name)
                weight.normal_(0.0, float(parsed.kwargs["std"]) if std is None else std)
            if module.bias is not None:
                module.bias.zero_()
    return model


__all__ = ["MODELS", "INITS", "LinearRegression", "SoftmaxRegression", "MLP", "SmallCNN",
           "build_model", "initialize", "check_init"]
