"""Small models for the embedded datasets; every model maps x -> logits [B, C].

* `mlp`    — flatten, two hidden layers. Works on any input shape.
* `cnn1d`  — three 1-D convolutions for MNIST-1D's [1, 40] signals, then a linear head.
* `cnn2d`  — two 3×3 convolutions for sklearn's 8×8 digits.

Every model takes `width` (channels of a CNN, hidden units of the MLP).
`build_model(name, input_shape, num_classes, width=...)` is the one entry point the trainer and the CLI use;
`MODELS` lists the names it knows.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .errors import check_choice


class MLP(nn.Module):
    def __init__(self, input_shape: tuple[int, ...], num_classes: int, width: int = 256) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(math.prod(input_shape), width), nn.ReLU(),
            nn.Linear(width, width), nn.ReLU(),
            nn.Linear(width, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class CNN1d(nn.Module):
    """Conv(1→c, k5) → ReLU → Conv(c→c, k3, stride 2) → ReLU → Conv(c→c, k3, stride 2) → ReLU → Linear."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, width: int = 32) -> None:
        super().__init__()
        in_channels, length = input_shape
        channels = width
        self.features = nn.Sequential(
            nn.Conv1d(in_channels, channels, 5, padding=2), nn.ReLU(),  # [B, c, L]
            nn.Conv1d(channels, channels, 3, stride=2, padding=1), nn.ReLU(),  # [B, c, L/2]
            nn.Conv1d(channels, channels, 3, stride=2, padding=1), nn.ReLU(),  # [B, c, L/4]
        )
        self.head = nn.Linear(channels * math.ceil(length / 4), num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1))


class CNN2d(nn.Module):
    """Two 3×3 convolutions and a 2×2 pooling for 8×8 digits, then a linear head."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, width: int = 32) -> None:
        super().__init__()
        in_channels, height, side = input_shape
        channels = width
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, channels, 3, padding=1), nn.ReLU(),  # [B, c, 8, 8]
            nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(),  # [B, c, 8, 8]
            nn.MaxPool2d(2),  # [B, c, 4, 4]
        )
        self.head = nn.Linear(channels * (height // 2) * (side // 2), num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1))


MODELS = {"mlp": MLP, "cnn1d": CNN1d, "cnn2d": CNN2d}


def build_model(name: str, input_shape: tuple[int, ...], num_classes: int, **options) -> nn.Module:
    """Build a model by name for inputs of `input_shape` (one sample, no batch dimension)."""
    check_choice("model", name, tuple(MODELS))
    return MODELS[name](tuple(input_shape), num_classes, **options)
