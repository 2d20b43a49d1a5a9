"""Temporal Ensembling: each sample's moving average of its past predictions is its target.

Per-sample state like LSTSD's, but one running average instead of records from chosen epochs; no
extra forward pass. Its state is not a `SnapshotBuffer`, so it is not shared between ranks and the
method refuses to run on several (`supports_ddp = False`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..errors import PROBABILITY, ConfigError, Range, Setting
from ..losses import per_sample_ce
from ..space import OPTIMISER, LogUniform, Uniform
from .base import Batch, Method


class TemporalEnsembling(Method):
    """Temporal Ensembling (Laine & Aila, ICLR 2017), fully supervised, as a label-noise peer.

    Each sample keeps an exponential moving average Z_i of its past predictions; with start-up
    bias correction it is the sample's target. After n_i updates of sample i:

        Z_i ← α · Z_i + (1 − α) · softmax(z_i)          once per epoch, when i is trained on
        target_i = Z_i / (1 − α^{n_i})                  (Z starts at 0; this removes the bias)
        w(e) = w_max · exp(−5 (1 − e / R)²) for e < R, w_max after        (Gaussian ramp-up)
        L = 1/B Σ_i [ CE(z_i, y_i) + w(e) · 1/C Σ_c (softmax(z_i)_c − target_i,c)² ]

    The target is read before sample i's update in the step that sees it, which, with each sample
    seen once per epoch, is the paper's end-of-epoch update. A sample with no update yet (the
    first epoch) has no target and only its CE counts.

    Defaults, from the authors' public code: α = 0.6; w_max = 30 (its temporal-ensembling
    presets) times the labelled fraction, here 1; the ramp-up R is 80 of its 300 epochs, so here
    R = round(80/300 · epochs). The optimiser stays the trainer's (SGD, cosine), not the paper's Adam.
    Memory: Z as N × C fp32 plus an update count per sample; no extra forward pass.
    """

    name = "te"
    colour = "#999933"  # olive
    settings = {
        "te_decay": Setting(0.6, "decay α of the moving average", Range(0.0, 1.0, high_inclusive=False)),
        "te_max_weight": Setting(30.0, "final weight of the consistency term", Range(0.0, 1e6)),
        "te_rampup": Setting(80 / 300, "ramp-up length as a fraction of the epochs", PROBABILITY),
    }
    search_space = {
        **OPTIMISER,
        "te_decay": Uniform(0.3, 0.9),
        "te_max_weight": LogUniform(1.0, 100.0),
        "te_rampup": Uniform(0.1, 0.5),
    }
    tuned = {  # chosen on validation by `lstsd-edu tune` (benchmarks/tuned_presets.py writes it)
        "digits": {
            "lr": 0.011669175617305327,
            "weight_decay": 0.0008724681516933753,
            "te_decay": 0.7944655094068928,
            "te_max_weight": 39.69982878246277,
            "te_rampup": 0.2736742671983881,
        },
        "mnist1d": {
            "lr": 0.017585361846218953,
            "weight_decay": 0.01802505840352201,
            "te_decay": 0.6467289236054334,
            "te_max_weight": 4.189987330205661,
            "te_rampup": 0.21569808757764194,
        },
        "textsynth": {
            "lr": 0.45598606819422766,
            "weight_decay": 2.6226278378729864e-05,
            "te_decay": 0.738535645918021,
            "te_max_weight": 1.1886712031424502,
            "te_rampup": 0.2495211734321112,
        },
    }
    supports_ddp = False  # Z and the update counts are per rank: not shared under DDP
    ensemble: torch.Tensor | None = None  # [N, C] Z, allocated by setup
    updates: torch.Tensor | None = None  # [N] n_i

    def __init__(
        self, decay: float = 0.6, max_weight: float = 30.0, rampup: float = 80 / 300, epochs: int | None = None
    ) -> None:
        self.decay, self.max_weight, self.rampup, self.epochs = decay, max_weight, rampup, epochs

    @classmethod
    def from_config(cls, config) -> TemporalEnsembling:
        return cls(config.te_decay, config.te_max_weight, config.te_rampup)

    def setup(self, num_samples: int, num_classes: int, device: torch.device, epochs: int) -> None:
        self.epochs = epochs  # for the ramp-up length R
        self.ensemble = torch.zeros(num_samples, num_classes, device=device)  # [N, C]  Z
        self.updates = torch.zeros(num_samples, dtype=torch.int32, device=device)  # [N]  n_i

    def weight(self, epoch: int) -> float:
        """w(e) = w_max · exp(−5 (1 − e/R)²) before epoch R, w_max from then on."""
        if self.epochs is None:
            raise ConfigError("te needs the epoch budget: pass epochs=… or train it with the Trainer")
        ramp = round(self.rampup * self.epochs)
        if epoch >= ramp:
            return self.max_weight
        return self.max_weight * math.exp(-5.0 * (1.0 - epoch / ramp) ** 2)

    def loss(self, logits: torch.Tensor, batch: Batch, epoch: int) -> torch.Tensor:
        _, y, index = batch
        p = F.softmax(logits.float(), dim=1)  # [B, C]
        with torch.no_grad():
            n = self.updates[index]  # [B]
            z = self.ensemble[index]  # [B, C]
            # target = Z / (1 − α^n); a sample with n = 0 has none (its term is masked below)
            target = z / (1.0 - self.decay ** n.clamp_min(1).double()).float()[:, None]
            has_target = (n > 0).float()  # [B]
        mse = ((p - target) ** 2).mean(dim=1) * has_target  # [B]  1/C Σ_c (p − target)²
        loss = per_sample_ce(logits, y).mean() + self.weight(epoch) * mse.mean()
        with torch.no_grad():  # Z ← α Z + (1 − α) p, after reading the target
            self.ensemble[index] = self.decay * z + (1.0 - self.decay) * p.detach()
            self.updates[index] = n + 1
        return loss

    @property
    def state_bytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.ensemble, self.updates) if t is not None)

    def state_dict(self) -> dict:
        return {"ensemble": self.ensemble, "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        self.ensemble.copy_(state["ensemble"])
        self.updates.copy_(state["updates"])

    def __repr__(self) -> str:
        return (
            f"TemporalEnsembling(decay={self.decay}, max_weight={self.max_weight}, "
            f"rampup={self.rampup:.4g}, epochs={self.epochs})"
        )
