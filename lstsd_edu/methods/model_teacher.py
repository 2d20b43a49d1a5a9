"""What the methods whose teacher is a whole frozen model share (Snapshot Distillation, Born-Again).

Unlike LSTSD's per-sample records, such a teacher must run a forward pass over every batch: that
extra pass, and a copy of the weights in memory, is its price.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from .base import Method


def frozen_copy(model: nn.Module) -> nn.Module:
    """A deep copy of `model` in eval mode with `requires_grad=False`: a teacher that cannot move."""
    return copy.deepcopy(model).eval().requires_grad_(False)


def model_bytes(model: nn.Module | None) -> int:
    """Bytes of a model's parameters and buffers (what a weight-snapshot teacher costs in memory)."""
    if model is None:
        return 0
    return sum(t.numel() * t.element_size() for t in model.state_dict().values())


class ModelTeacher(Method):
    """A method whose teacher is a frozen model.

    The teacher runs once per step on the batch's inputs `x = batch[0]`: under `torch.no_grad()`
    (nothing flows back into it) and inside the trainer's autocast region, because `loss` is
    called there (bf16 on CUDA, fp32 elsewhere), so it costs what a student forward costs.
    """

    extra_forward_passes = 1  # the teacher's forward pass over the batch
    teacher: nn.Module | None = None

    def teacher_probs(self, x: torch.Tensor, temperature: float) -> torch.Tensor:
        """softmax(z_teacher / T) for the batch's inputs: [B, ...] -> [B, C]."""
        with torch.no_grad():
            logits = self.teacher(x)  # [B, C]
        return F.softmax(logits.float() / temperature, dim=1)

    @property
    def state_bytes(self) -> int:
        return model_bytes(self.teacher)

    def state_dict(self) -> dict:
        # the whole module, since a checkpoint is loaded into a method that has no model to copy yet
        return {"teacher": self.teacher}

    def load_state_dict(self, state: dict) -> None:
        self.teacher = None if state["teacher"] is None else frozen_copy(state["teacher"])
