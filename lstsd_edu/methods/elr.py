"""ELR: early-learning regularization, each sample's moving average of its predictions as a target.

LSTSD's closest relative in the noisy-label literature: per-sample state written during the
normal training forward pass (no extra pass), used to hold the model to its own earlier
predictions for that sample. Its state is a plain N × C tensor, not a `SnapshotBuffer`, so like
Temporal Ensembling's it is not shared between ranks and the method refuses to run on several
(`supports_ddp = False`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import Range, Setting
from ..losses import per_sample_ce
from ..space import OPTIMISER, LogUniform, Uniform
from .base import Batch, Method


class EarlyLearningRegularization(Method):
    """Early-learning regularization (Liu, Niles-Weed, Razavian & Fernandez-Granda, NeurIPS 2020).

    A network fits the correctly labelled samples first, in an "early learning" phase, and only
    later memorises the wrongly labelled ones (the paper's abstract). ELR keeps, for each sample,
    a moving average t_i of the model's predictions and adds a term that steers the model toward
    it, so memorising a flipped label later has to pull against the early predictions. For each
    sample i of a batch, with p_i = softmax(z_i) clamped to [ε, 1 − ε], ε = 1e-4:

        p̂_i = p_i / Σ_c p_i,c                          renormalised after the clamp; detached
        t_i ← β · t_i + (1 − β) · p̂_i                  whenever i is in a batch, before the loss reads t_i
        L   = 1/B Σ_i CE(z_i, y_i) + λ · 1/B Σ_i log(1 − ⟨p_i, t_i⟩)

    t starts at 0 and is not bias-corrected, as in the authors' public code: after n visits t_i sums to
    1 − βⁿ, and at its first visit a sample's target is (1 − β) p̂_i, its own current prediction,
    scaled. Because t_i sums to at most 1 and every p_i,c ≤ 1 − ε, ⟨p_i, t_i⟩ ≤ 1 − ε and the log is
    finite; a class whose probability is clamped passes no gradient. The term is minimised by
    raising ⟨p, t⟩, the mass the model puts where the target does:

        ∂ log(1 − ⟨p, t⟩) / ∂z_c = −p_c (t_c − ⟨p, t⟩) / (1 − ⟨p, t⟩)

    so a step raises z_c for the classes where t_c exceeds ⟨p, t⟩, and pulls harder the more p and
    t agree already (the 1 / (1 − ⟨p, t⟩)).

    How it differs from LSTSD (`lstsd.py`), which also teaches each sample with its own past:
    * the teacher: one moving average of every past prediction (with β = 0.7, half of its weight
      is on about the last two visits), against LSTSD's records of chosen epochs, e − 1 and
      e − L (or the previous phase's end), so that one teacher is guaranteed to be old;
    * the penalty: log(1 − ⟨p, t⟩), which rewards agreement on the target's classes, added on top
      of a full-weight CE, against LSTSD's τ² · KL(p_teacher ‖ softmax(z/τ)), which matches the
      whole distribution and takes its weight from CE;
    * the target already holds the current step's own (detached) prediction; no ramp, no τ;
    * memory: t as N × C fp32, against N × C × slots fp16 log-probabilities.
    From Temporal Ensembling (`te.py`), the same kind of state: TE corrects its average's start-up
    bias, reads it before updating it, and penalises the squared distance with a ramped weight.

    Defaults and where they come from: λ = 3 and β = 0.7 are the CIFAR-10 settings of the
    authors' public code, as commonly reported (its CIFAR-100 settings: λ = 7, β = 0.9); ε = 1e-4
    and the zero start are that code's too. We hold only the paper's abstract, which names none
    of them. This is ELR, not ELR+ (which adds mixup, weight averaging and a second network); the
    optimiser and schedule stay the trainer's (SGD, cosine). Memory: t as N × C fp32; no extra
    forward pass.
    """

    name = "elr"
    colour = "#882255"  # wine
    settings = {
        "elr_lambda": Setting(3.0, "weight λ of the term log(1 − ⟨p, t⟩)", Range(0.0, 1e6)),
        "elr_beta": Setting(0.7, "momentum β of each sample's target t", Range(0.0, 1.0, high_inclusive=False)),
    }
    search_space = {**OPTIMISER, "elr_lambda": LogUniform(0.3, 10.0), "elr_beta": Uniform(0.5, 0.99)}
    tuned = {  # chosen on validation by `lstsd-edu tune` (benchmarks/tuned_presets.py writes it)
        "digits": {"lr": 0.05, "weight_decay": 0.0005, "elr_lambda": 3.0, "elr_beta": 0.7},
        "mnist1d": {
            "lr": 0.15168731883269568,
            "weight_decay": 0.0020234851235105284,
            "elr_lambda": 2.3872534138289985,
            "elr_beta": 0.5812784604550059,
        },
        "textsynth": {
            "lr": 0.15168731883269568,
            "weight_decay": 0.0020234851235105284,
            "elr_lambda": 2.3872534138289985,
            "elr_beta": 0.5812784604550059,
        },
    }
    supports_ddp = False  # t is per rank: not shared under DDP
    CLAMP = 1e-4  # ε
    targets: torch.Tensor | None = None  # [N, C] t, allocated by setup

    def __init__(self, weight: float = 3.0, beta: float = 0.7) -> None:
        self.weight, self.beta = weight, beta  # λ, β

    @classmethod
    def from_config(cls, config) -> EarlyLearningRegularization:
        return cls(config.elr_lambda, config.elr_beta)

    def setup(self, num_samples: int, num_classes: int, device: torch.device, epochs: int) -> None:
        self.targets = torch.zeros(num_samples, num_classes, device=device)  # [N, C]  t = 0

    def loss(self, logits: torch.Tensor, batch: Batch, epoch: int) -> torch.Tensor:
        _, y, index = batch
        p = F.softmax(logits.float(), dim=1).clamp(self.CLAMP, 1.0 - self.CLAMP)  # [B, C]
        with torch.no_grad():
            p_hat = p / p.sum(dim=1, keepdim=True)  # [B, C]  renormalised, detached
            # t_i ← β · t_i + (1 − β) · p̂_i
            t = self.beta * self.targets[index] + (1.0 - self.beta) * p_hat  # [B, C]
            self.targets[index] = t
        # log(1 − ⟨p_i, t_i⟩)
        penalty = torch.log1p(-(p * t).sum(dim=1))  # [B]
        return per_sample_ce(logits, y).mean() + self.weight * penalty.mean()

    @property
    def state_bytes(self) -> int:
        return self.targets.numel() * self.targets.element_size() if self.targets is not None else 0

    def state_dict(self) -> dict:
        return {"targets": self.targets}

    def load_state_dict(self, state: dict) -> None:
        self.targets.copy_(state["targets"])

    def __repr__(self) -> str:
        return f"EarlyLearningRegularization(weight={self.weight}, beta={self.beta})"
