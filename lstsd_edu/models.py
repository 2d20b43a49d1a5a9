"""Small models for the toolkit's datasets; every model maps x -> logits [B, C].

* `mlp`    — flatten, two hidden layers. Works on any input shape.
* `cnn1d`  — three 1-D convolutions for MNIST-1D's [1, 40] signals, then a linear head.
* `cnn2d`  — two 3×3 convolutions for sklearn's 8×8 digits.
* `resnet20`, `resnet32`, `resnet56`, `resnet110` — He et al.'s (2016) CIFAR ResNets (see below).
* `textbag`, `textcnn` — a bag of embeddings and a 1-D CNN over token ids (see below).

Every model takes `width` (channels of a CNN, hidden units of the MLP).
`build_model(name, input_shape, num_classes, width=...)` is the one entry point the trainer and the CLI use;
`MODELS` lists the names it knows.
"""

from __future__ import annotations

import math
from functools import partial

import torch
from torch import nn

from .data.vocabulary import Vocabulary
from .errors import ConfigError, check_choice, check_range


class MLP(nn.Module):
    def __init__(self, input_shape: tuple[int, ...], num_classes: int, width: int = 256) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(math.prod(input_shape), width),
            nn.ReLU(),
            nn.Linear(width, width),
            nn.ReLU(),
            nn.Linear(width, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class CNN1d(nn.Module):
    """Three (Conv1d → BatchNorm → ReLU) blocks, the last two with stride 2, then a linear head.

    BatchNorm keeps SGD at lr 0.1 stable. That matters more with self-distillation than without:
    an epoch where training spikes leaves bad records behind, and they teach later epochs.
    """

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, width: int = 32) -> None:
        super().__init__()
        in_channels, length = input_shape
        c = width

        def block(c_in: int, kernel: int, stride: int) -> list[nn.Module]:
            return [nn.Conv1d(c_in, c, kernel, stride, padding=kernel // 2, bias=False), nn.BatchNorm1d(c), nn.ReLU()]

        self.features = nn.Sequential(
            *block(in_channels, 5, 1),  # [B, c, L]
            *block(c, 3, 2),  # [B, c, L/2]
            *block(c, 3, 2),  # [B, c, L/4]
        )
        self.head = nn.Linear(c * math.ceil(length / 4), num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1))


class CNN2d(nn.Module):
    """Two 3×3 convolutions and a 2×2 pooling for 8×8 digits, then a linear head."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, width: int = 32) -> None:
        super().__init__()
        in_channels, height, side = input_shape
        channels = width
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, channels, 3, padding=1),
            nn.ReLU(),  # [B, c, 8, 8]
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.ReLU(),  # [B, c, 8, 8]
            nn.MaxPool2d(2),  # [B, c, 4, 4]
        )
        self.head = nn.Linear(channels * (height // 2) * (side // 2), num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1))


# ---------------------------------------------------------------------------------------------
# CIFAR ResNets 20/32/56/110 (He et al., 2016, section 4.2)
# ---------------------------------------------------------------------------------------------
# The paper's CIFAR family: a 3×3 convolution to w = 16 channels, then three stages of n basic
# blocks with w, 2w, 4w channels on 32×32, 16×16 and 8×8 maps, then global average pooling and
# a linear layer. Depth = 6n + 2 weighted layers: n = 3, 5, 9, 18 for ResNet-20/32/56/110.
#
# A basic block:   out = ReLU( BN(conv3×3(ReLU(BN(conv3×3(x))))) + shortcut(x) )
#
# Shortcuts are the paper's option A, as it used on CIFAR: the identity, and where a stage
# halves the map and doubles the channels, x subsampled with stride 2 and zero-padded with the
# missing channels — no parameters. So ResNet-20 has 0.27 M parameters with 10 classes.
# `width` sets w (narrow ResNets for CPU demos). On CUDA the trainer stores the model
# channels_last (`channels_last = True` below), the layout bf16 convolutions run fastest in.
class BasicBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.stride, self.extra_channels = stride, out_channels - in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))  # [B, c_out, H/s, W/s]
        out = self.bn2(self.conv2(out))
        shortcut = x
        if self.stride != 1 or self.extra_channels:  # option A: subsample, pad channels with zeros
            front = self.extra_channels // 2
            shortcut = nn.functional.pad(
                x[:, :, :: self.stride, :: self.stride], (0, 0, 0, 0, front, self.extra_channels - front)
            )
        return torch.relu(out + shortcut)


class CifarResNet(nn.Module):
    """ResNet-(6n+2) for 32×32 images; see the section comment above."""

    channels_last = True  # the trainer converts the model to NHWC on CUDA

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, depth: int = 20, width: int = 16) -> None:
        super().__init__()
        if depth < 8 or (depth - 2) % 6:
            raise ConfigError(f"depth must be 6n + 2 with n ≥ 1 (20, 32, 56, 110, …); got {depth}")
        check_range("width", width, 1, 4096, integer=True)
        blocks = (depth - 2) // 6
        self.depth = depth
        self.stem = nn.Sequential(
            nn.Conv2d(input_shape[0], width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU()
        )  # [B, w, 32, 32]
        layers, channels = [], width
        for stage, out_channels in enumerate((width, 2 * width, 4 * width)):
            for block in range(blocks):
                stride = 2 if stage > 0 and block == 0 else 1  # halve the map at stages 2 and 3
                layers.append(BasicBlock(channels, out_channels, stride))
                channels = out_channels
        self.stages = nn.Sequential(*layers)  # [B, 4w, 8, 8]
        self.head = nn.Linear(channels, num_classes)
        for m in self.modules():  # He et al. (2015) initialisation for the convolutions
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stages(self.stem(x))  # [B, 4w, H/4, W/4]
        return self.head(h.mean(dim=(2, 3)))  # global average pool -> [B, C]


# ---------------------------------------------------------------------------------------------
# Text models: a bag of embeddings and a 1-D CNN, both masked
# ---------------------------------------------------------------------------------------------
# A text x is [B, T] token ids with 0 for padding, and its input_shape is (T, V): T positions,
# V vocabulary entries (see data/vocabulary.py). Both models start from an embedding table whose
# row 0 is padding, and both derive the padding mask from the input itself (`keep = x != 0`), so
# they need nothing but x:
#
# * `textbag` — the mean of the embeddings of the real tokens, then a two-layer MLP. It sees
#   which words a sentence holds, not where: blind to order.
# * `textcnn` — three dilated 1-D convolutions over the embeddings (each position sees 15
#   tokens), zeroed at padding after every layer, a max over positions and a linear head. It
#   learns the textsynth task on CPU in about 20 epochs. (A 2-layer transformer encoder under the
#   trainer's SGD recipe stayed near 0.5–0.57 clean test accuracy in our short trials, so the
#   toolkit ships the CNN.)
PAD = Vocabulary.PAD  # the token id of padding


def padding_mask(x: torch.Tensor) -> torch.Tensor:
    """keep[b, t] = x[b, t] != 0: True where there is a real token, [B, T] -> [B, T] bool."""
    return x != PAD


def masked_mean(h: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Σ_t keep_t h_t / Σ_t keep_t: the mean over real tokens, [B, T, D], [B, T] -> [B, D]."""
    weights = keep.to(h.dtype).unsqueeze(-1)  # [B, T, 1]
    return (h * weights).sum(1) / weights.sum(1).clamp_min(1.0)


def _text_shape(input_shape: tuple[int, ...]) -> tuple[int, int]:
    if len(input_shape) != 2:
        raise ConfigError(f"input_shape of a text model must be (max_len, vocab_size); got {input_shape!r}")
    return int(input_shape[0]), int(input_shape[1])


class BagOfEmbeddings(nn.Module):
    """mean_t E[x_t] over real tokens -> Linear -> ReLU -> Linear. Sees which words, not where."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, width: int = 64) -> None:
        super().__init__()
        _, vocab_size = _text_shape(input_shape)
        self.embed = nn.Embedding(vocab_size, width, padding_idx=PAD)
        self.head = nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bag = masked_mean(self.embed(x), padding_mask(x))  # [B, D]
        return self.head(bag)  # [B, C]


class TextCNN(nn.Module):
    """Embeddings -> three dilated 1-D convolutions -> max over real tokens -> Linear.

    Kernel 3 with dilations 1, 2, 4: each output position sees 1 + 2·(1 + 2 + 4) = 15 tokens, a
    whole clause and the connective around it, so a feature can fire for "an adjective, negated,
    after `but`". Padding stays zero after every layer (h ← relu(conv(h)) · keep), so it reads as
    the zero padding at a sentence's ends; and since relu(·) ≥ 0, the max over all T positions
    equals the max over the real tokens.
    """

    def __init__(
        self,
        input_shape: tuple[int, ...],
        num_classes: int,
        width: int = 64,
        embedding_dim: int = 32,
        dilations: tuple[int, ...] = (1, 2, 4),
    ) -> None:
        super().__init__()
        _, vocab_size = _text_shape(input_shape)
        self.embed = nn.Embedding(vocab_size, embedding_dim, padding_idx=PAD)
        channels = [embedding_dim] + [width] * len(dilations)
        self.convs = nn.ModuleList(
            nn.Conv1d(c_in, c_out, 3, padding=d, dilation=d)  # length kept
            for c_in, c_out, d in zip(channels, channels[1:], dilations, strict=False)
        )
        self.head = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        keep = padding_mask(x)[:, None, :].float()  # [B, 1, T]
        h = self.embed(x).transpose(1, 2)  # [B, E, T]: channels first for Conv1d
        for conv in self.convs:
            h = torch.relu(conv(h)) * keep  # [B, W, T], zero at padding
        return self.head(h.amax(2))  # max over positions [B, W] -> [B, C]


# ---------------------------------------------------------------------------------------------
# The registry
# ---------------------------------------------------------------------------------------------
MODELS = {
    "mlp": MLP,
    "cnn1d": CNN1d,
    "cnn2d": CNN2d,
    "textbag": BagOfEmbeddings,
    "textcnn": TextCNN,
    **{f"resnet{depth}": partial(CifarResNet, depth=depth) for depth in (20, 32, 56, 110)},
}


def build_model(name: str, input_shape: tuple[int, ...], num_classes: int, **options) -> nn.Module:
    """Build a model by name for inputs of `input_shape` (one sample, no batch dimension)."""
    check_choice("model", name, tuple(MODELS))
    return MODELS[name](tuple(input_shape), num_classes, **options)
