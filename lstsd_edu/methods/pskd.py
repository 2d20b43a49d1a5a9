"""PS-KD: progressive self-knowledge distillation, the short-term teacher with a growing weight.

Closest to LSTSD's `short` ablation: each sample's previous-epoch prediction, recorded during that
epoch's own forward pass in a `SnapshotBuffer` with lag 1; no extra forward pass.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..buffer import SnapshotBuffer
from ..errors import PROBABILITY, ConfigError, Setting
from ..losses import soft_target_ce
from ..space import OPTIMISER, Uniform
from .base import Batch, Method


class ProgressiveSelfKD(Method):
    """PS-KD, progressive self-knowledge distillation (Kim, Ji, Yoon & Hwang, ICCV 2021).

    The target mixes the label with the model's own prediction for the same sample at the
    previous epoch, and trusts the past more and more as training goes on:

        α_t = α_T · t / T                               t = epoch + 1 = 1 … T
        target_i = (1 − α_t) · onehot(y_i) + α_t · p_i^(t−1)
        L = 1/B Σ_i −Σ_c target_i,c · log softmax(z_i)_c

    p^(t−1) is the previous epoch's softmax, recorded during that epoch's own training forward
    pass (no extra pass), in a `SnapshotBuffer` with lag 1 (two fp16 slots of N × C). In the first
    epoch there is no previous prediction and the target is the label, as in the authors' code.

    Defaults: α_T = 0.8, the authors' public code. The budget T is the run's epoch count, which the
    trainer hands over in `setup`; the learning-rate schedule stays the trainer's.
    The official code keeps fp32 probabilities; our fp16 log-probabilities are renormalised on read.
    """

    name = "pskd"
    colour = "#009E73"  # bluish green
    settings = {"pskd_alpha": Setting(0.8, "final weight α_T of the previous prediction", PROBABILITY)}
    search_space = {**OPTIMISER, "pskd_alpha": Uniform(0.2, 0.95)}
    tuned = {  # chosen on validation by `lstsd-edu tune` (benchmarks/tuned_presets.py writes it)
        "digits": {"lr": 0.026421477685304347, "weight_decay": 0.000752667570992987, "pskd_alpha": 0.6777063912210863},
        "mnist1d": {"lr": 0.0393998784340911, "weight_decay": 0.022289497671552055, "pskd_alpha": 0.3891617750298333},
        "textsynth": {
            "lr": 0.24138628930208286,
            "weight_decay": 0.0011672103698105406,
            "pskd_alpha": 0.6491633347361859,
        },
    }

    def __init__(self, alpha: float = 0.8, epochs: int | None = None) -> None:
        self.alpha, self.epochs = alpha, epochs

    @classmethod
    def from_config(cls, config) -> ProgressiveSelfKD:
        return cls(config.pskd_alpha)

    def setup(self, num_samples: int, num_classes: int, device: torch.device, epochs: int) -> None:
        self.num_classes, self.epochs = num_classes, epochs  # T, for α_t
        self.buffer = SnapshotBuffer(num_samples, num_classes, 1, "sliding", device)

    def alpha_at(self, epoch: int) -> float:
        """α_t = α_T · (epoch + 1) / T for a 0-based `epoch`."""
        if self.epochs is None:
            raise ConfigError("pskd needs the epoch budget T: pass epochs=… or train it with the Trainer")
        return self.alpha * (epoch + 1) / self.epochs

    def loss(self, logits: torch.Tensor, batch: Batch, epoch: int) -> torch.Tensor:
        _, y, index = batch
        previous, valid = self.buffer.log_probs([epoch - 1], index)  # [1, B, C], [1, B]
        p_prev = previous[0].log_softmax(1).exp()  # [B, C]  renormalised after fp16 storage
        a = self.alpha_at(epoch) * valid[0].float()[:, None]  # [B, 1]  0 where no previous epoch
        # target = (1 − α_t) · onehot(y) + α_t · p^(t−1)
        target = (1.0 - a) * F.one_hot(y, self.num_classes).float() + a * p_prev  # [B, C]
        loss = soft_target_ce(target, logits).mean()
        self.buffer.record(epoch, index, F.log_softmax(logits.detach().float(), dim=1))
        return loss

    def __repr__(self) -> str:
        return f"ProgressiveSelfKD(alpha={self.alpha}, epochs={self.epochs})"
