"""Snapshot Distillation: the last model of the previous cyclic-LR cycle teaches.

Its teacher is a frozen copy of the weights (`model_teacher.ModelTeacher`): one extra forward
pass per step from the second cycle on. We hold only the paper's abstract; the docstring below
says where each setting comes from. None was tuned on our data by hand; `lstsd-edu tune` gives it
the same search budget as every other method.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..errors import TEMPERATURE, ConfigError, Range, Setting
from ..losses import per_sample_ce, per_sample_kl
from ..space import OPTIMISER, Integers, Uniform
from .base import Batch
from .model_teacher import ModelTeacher, frozen_copy


class SnapshotDistillation(ModelTeacher):
    """Snapshot Distillation (Yang, Xie, Su & Yuille, CVPR 2019): a teacher from the same run.

    Training is cut into K cycles of a cosine learning rate that restarts at lr₀ at each cycle's
    start. The model at the end of cycle k, frozen, teaches every step of cycle k + 1; the first
    cycle has no teacher and trains with plain CE:

        lr(s)   = lr₀ · ½ (1 + cos(π · (s − S_k) / P_k))        step s in cycle k (start S_k, length P_k)
        p_t     = softmax(z_teacher / T)                        the temperature-smoothed teacher
        L       = λ_s · CE(z, y) + λ_t · KL(p_t ‖ softmax(z))   batch mean; cycle 1: L = CE(z, y)

    Only the teacher is tempered: KL(p_t ‖ q) = −Σ p_t log q − H(p_t), so this is the soft-target
    cross-entropy −Σ p_t log q up to the teacher's entropy, a constant: same gradients.

    Defaults and where they come from. The mechanism (cyclic LR, last snapshot of a cycle teaches
    the whole next cycle, smoothed teacher) is the paper's abstract; its constants could not be
    read here and there is no official code, so we take those of a public re-implementation:
    T = 3, λ_s = 1 + 1/T, λ_t = 1, K = 4 cycles over the run (there 300 epochs, 75 per cycle;
    here `epochs / 4`, e.g. 15 of 60). The teacher runs in eval mode.

    Cost: one extra forward pass per step from the second cycle on, and one model copy in memory.
    """

    name = "snapshot"
    colour = "#0072B2"  # blue
    settings = {
        "snapshot_cycles": Setting(4, "cyclic-LR cycles over the run", Range(1, 1000, integer=True)),
        "snapshot_temperature": Setting(3.0, "temperature T of the teacher", TEMPERATURE),
        "snapshot_teacher_weight": Setting(1.0, "weight λ_t of the KL term (λ_s = 1 + 1/T)", Range(0.0, 100.0)),
    }
    search_space = {
        **OPTIMISER,
        "snapshot_cycles": Integers(2, 6),
        "snapshot_temperature": Uniform(1.0, 6.0),
        "snapshot_teacher_weight": Uniform(0.25, 2.0),
    }
    tuned = {  # chosen on validation by `lstsd-edu tune` (benchmarks/tuned_presets.py writes it)
        "digits": {
            "lr": 0.2315257812366062,
            "weight_decay": 0.0022504783737403943,
            "snapshot_cycles": 3,
            "snapshot_temperature": 1.000119147994155,
            "snapshot_teacher_weight": 1.2929535677328303,
        },
        "mnist1d": {
            "lr": 0.010634552325082439,
            "weight_decay": 0.03518860325010026,
            "snapshot_cycles": 6,
            "snapshot_temperature": 4.924006511580506,
            "snapshot_teacher_weight": 0.8558358683206456,
        },
        "textsynth": {
            "lr": 0.27457671872039574,
            "weight_decay": 0.00023625252550576323,
            "snapshot_cycles": 4,
            "snapshot_temperature": 5.5093392754810395,
            "snapshot_teacher_weight": 1.6470980235809014,
        },
    }

    def __init__(
        self,
        cycles: int = 4,
        temperature: float = 3.0,
        student_weight: float | None = None,
        teacher_weight: float = 1.0,
    ) -> None:
        student_weight = 1.0 + 1.0 / temperature if student_weight is None else student_weight
        self.cycles, self.temperature = cycles, temperature
        self.student_weight, self.teacher_weight = student_weight, teacher_weight
        self.bounds: list[int] | None = None  # epochs where cycles start, plus the end

    @classmethod
    def from_config(cls, config) -> SnapshotDistillation:
        return cls(config.snapshot_cycles, config.snapshot_temperature, teacher_weight=config.snapshot_teacher_weight)

    def setup(self, num_samples: int, num_classes: int, device: torch.device, epochs: int) -> None:
        self.bounds = self.cycle_bounds(epochs)

    def cycle_bounds(self, epochs: int) -> list[int]:
        """[b_0 = 0, b_1, …, b_K = epochs]: cycle k covers epochs b_k … b_{k+1} − 1."""
        cycles = min(self.cycles, epochs)  # a cycle is at least one epoch
        return [round(k * epochs / cycles) for k in range(cycles + 1)]

    def make_scheduler(
        self, optimizer: torch.optim.Optimizer, epochs: int, steps_per_epoch: int
    ) -> torch.optim.lr_scheduler.LambdaLR:
        """The cyclic cosine schedule above, stepped once per batch."""
        starts = [b * steps_per_epoch for b in self.bounds]  # S_0 … S_K in steps

        def factor(step: int) -> float:
            k = max(i for i in range(len(starts) - 1) if starts[i] <= step)  # the cycle of `step`
            position = min(step - starts[k], starts[k + 1] - starts[k])
            # ½ (1 + cos(π (s − S_k) / P_k))
            return 0.5 * (1.0 + math.cos(math.pi * position / (starts[k + 1] - starts[k])))

        return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)

    def loss(self, logits: torch.Tensor, batch: Batch, epoch: int) -> torch.Tensor:
        x, y, _ = batch
        ce = per_sample_ce(logits, y).mean()
        if self.teacher is None:  # the first cycle: no snapshot yet
            return ce
        p_t = self.teacher_probs(x, self.temperature)  # [B, C]  softmax(z_teacher / T)
        # λ_s · CE(z, y) + λ_t · KL(p_t ‖ softmax(z)), batch mean
        return self.student_weight * ce + self.teacher_weight * per_sample_kl(p_t, logits).mean()

    def end_epoch(self, epoch: int, model: nn.Module) -> None:
        """At the end of a cycle that another cycle follows, the model becomes the teacher."""
        if self.bounds is None:
            raise ConfigError(
                "snapshot needs its cycles: train it with the Trainer, which calls "
                "setup(num_samples, num_classes, device, epochs)"
            )
        if epoch + 1 in self.bounds[1:-1]:
            if self.teacher is None:
                self.teacher = frozen_copy(model)
            else:  # reuse the copy's memory
                self.teacher.load_state_dict(model.state_dict())

    def __repr__(self) -> str:
        return (
            f"SnapshotDistillation(cycles={self.cycles}, temperature={self.temperature}, "
            f"student_weight={self.student_weight:.4g}, teacher_weight={self.teacher_weight})"
        )
