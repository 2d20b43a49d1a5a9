"""GCE: generalized cross-entropy, a loss between cross-entropy and the mean absolute error.

A one-model noisy-label baseline with no per-sample state and no teacher: only the loss changes.
Its one knob, q, is a Config field (`gce_q`), so it can be searched like any method's settings.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import Range, Setting
from ..space import OPTIMISER, Uniform
from .base import Batch, Method


class GeneralizedCrossEntropy(Method):
    """Generalized cross-entropy (Zhang & Sabuncu, NeurIPS 2018), the L_q loss.

    With f_y(x) = softmax(z)_y the probability the model gives the (possibly wrong) label,

        L_q(f(x), y) = (1 − f_y(x)^q) / q               q ∈ (0, 1]
        L = 1/B Σ_i L_q(f(x_i), y_i)

    Its two ends: as q → 0, (1 − f^q) / q → −log f, cross-entropy; at q = 1 it is 1 − f_y,
    the mean absolute error ‖onehot(y) − f‖₁ = 2 (1 − f_y) up to the factor 2. Why it resists
    noisy labels: its gradient is CE's weighted by f_y^q,

        ∂L_q/∂θ = f_y(x)^q · ∂(−log f_y(x))/∂θ

    so a sample the model finds unlikely under its label (often a flipped one) pulls less than it
    would under CE, while a sample it already fits (f_y near 1) keeps nearly CE's gradient. At
    q = 1 the hard clean samples are damped as much as the flipped ones, which is why MAE trains
    slowly; q trades robustness for speed of fitting.
    We compute (1 − f_y^q) / q as −expm1(q · log f_y) / q from the log-softmax, which stays exact
    for small q (where 1 − f^q loses its digits) and never forms f_y^q from an underflowed f_y.

    The paper's truncated variant L_trunc (a constant loss below a threshold k on f_y, with
    samples pruned on a schedule) is left out: this is plain L_q.

    Default q = 0.7: the value the paper's experiments use, as commonly reported; we hold only
    its abstract, which defines the family but not the value. The optimiser and schedule stay the
    trainer's (SGD, cosine). No per-sample state, no extra forward pass; one process or many alike.
    """

    name = "gce"
    colour = "#332288"  # indigo
    settings = {
        "gce_q": Setting(
            0.7,
            "exponent q of the loss (1 − p_y^q) / q (q → 0: CE; q = 1: 1 − p_y, half the MAE)",
            Range(0.0, 1.0, low_inclusive=False),
        )
    }
    search_space = {**OPTIMISER, "gce_q": Uniform(0.3, 1.0)}
    tuned = {  # chosen on validation by `lstsd-edu tune` (benchmarks/tuned_presets.py writes it)
        "digits": {"lr": 0.05, "weight_decay": 0.0005, "gce_q": 0.7},
        "mnist1d": {"lr": 0.025534991958759773, "weight_decay": 0.0021998768840449786, "gce_q": 0.9441495839201071},
        "textsynth": {"lr": 0.25119738585834983, "weight_decay": 3.513526767225635e-05, "gce_q": 0.6219213615870736},
    }

    def __init__(self, q: float = 0.7) -> None:
        self.q = q

    @classmethod
    def from_config(cls, config) -> GeneralizedCrossEntropy:
        return cls(config.gce_q)

    def loss(self, logits: torch.Tensor, batch: Batch, epoch: int) -> torch.Tensor:
        _, y, _ = batch
        log_p = F.log_softmax(logits.float(), dim=1)  # [B, C]
        log_p_y = log_p.gather(1, y[:, None]).squeeze(1)  # [B]  log f_y(x)
        # L_q = (1 − f_y^q) / q = −(exp(q · log f_y) − 1) / q
        return (-torch.expm1(self.q * log_p_y) / self.q).mean()

    def __repr__(self) -> str:
        return f"GeneralizedCrossEntropy(q={self.q})"
