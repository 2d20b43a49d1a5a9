"""The interface every method implements, and the two methods without per-sample state.

The trainer calls a method at four moments and asks it nothing else:

    method.setup(num_samples, num_classes, device, epochs)      # allocate per-sample state
    scheduler = method.make_scheduler(optimizer, epochs, steps)  # the learning-rate schedule
    method.start_epoch(epoch)                                    # before an epoch's first step
    loss = method.loss(logits, (x, y, index), epoch)             # every training step
    method.end_epoch(epoch, model)                               # after an epoch's last step

and reads two declared attributes: `buffer`, the per-sample records (a `SnapshotBuffer`, or None),
which under DDP are shared between ranks when an epoch ends and which diagnostics read; and
`state_bytes`, what the method keeps. `experiments.train` adds two moments around a run:
`prepare(pretrain, seed)` before the trainer is built (a method that needs another training run
first, such as Born-Again's first generation, trains it here) and `model_seed(seed)`, the seed
of the model it trains. A method builds itself from a `Config` (`from_config`), reading only its
own settings, and says whether it can train on several ranks (`supports_ddp`) and how many
forward passes it adds per step (`extra_forward_passes`), and which of its settings a tuner
should search, over which ranges (`search_space`, always including the optimiser's: `space.py`),
and the colour it has in every figure (`colour`, gathered into `plots.METHOD_COLOURS`).

A method's own knobs are declared here too: `settings` names each with its default, help text and
rule (`errors.Setting`; `config.Config` makes them fields and flags), and `tuned` holds, per
dataset, the values `lstsd-edu tune` chose in its `search_space` (written by
`benchmarks/tuned_presets.py` from benchmarks/results/tuning_<dataset>/; `experiments.preset`
applies them).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import ClassVar

import torch
from torch import nn

from ..buffer import SnapshotBuffer
from ..errors import Range, Setting
from ..losses import per_sample_ce
from ..space import OPTIMISER, Uniform

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # (x, y, index)


def cosine_schedule(optimizer: torch.optim.Optimizer, total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """lr(t) = lr₀ · ½ (1 + cos(π t / T)), stepped once per batch."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1.0 + math.cos(math.pi * min(step, total_steps) / total_steps))
    )


class Method:
    """A way of turning a batch's logits into a loss; see the module docstring for the interface."""

    name: ClassVar[str] = ""  # the registry key, e.g. "lstsd"
    supports_ddp: ClassVar[bool] = True  # False: its per-sample state is not shared between ranks
    extra_forward_passes: ClassVar[int] = 0  # forward passes per step beyond the student's own
    settings: ClassVar[dict[str, Setting]] = {}  # its own knobs, which Config makes fields
    search_space: ClassVar[dict] = OPTIMISER  # Config field -> distribution, what tuning.py searches
    tuned: ClassVar[dict[str, dict]] = {}  # dataset -> the values tuning chose (experiments.preset)
    colour: ClassVar[str | None] = None  # its colour in every figure (plots.METHOD_COLOURS)
    buffer: SnapshotBuffer | None = None  # per-sample records, if the method keeps them

    @classmethod
    def from_config(cls, config) -> Method:
        """The method with its settings read from `config` (an `experiments.Config`)."""
        return cls()

    # -- around a run (experiments.train) ----------------------------------------------------------
    def prepare(self, pretrain: Callable, seed: int) -> None:
        """Before the trainer is built; `pretrain(method, seed)` trains another method on the same
        data and settings and returns its `experiments.Run`. Most methods need nothing."""

    def model_seed(self, seed: int) -> int:
        """The seed of the model this method trains (initialisation and shuffling) in a run with `seed`."""
        return seed

    def prior_seconds(self, epoch: int) -> float:
        """Training seconds this method spent elsewhere for `epoch` of its budget (added to the
        history's `seconds`, so that seconds per epoch show the whole price)."""
        return 0.0

    # -- inside a run (Trainer) ----------------------------------------------------------------------
    def setup(self, num_samples: int, num_classes: int, device: torch.device, epochs: int) -> None:
        """Allocate per-sample state for a training set of `num_samples`, trained for `epochs`."""

    def make_scheduler(
        self, optimizer: torch.optim.Optimizer, epochs: int, steps_per_epoch: int
    ) -> torch.optim.lr_scheduler.LRScheduler:
        """The learning-rate schedule, stepped once per batch: cosine over the run unless a method
        brings its own (Snapshot Distillation's cycles)."""
        return cosine_schedule(optimizer, epochs * steps_per_epoch)

    def start_epoch(self, epoch: int) -> None:
        """Before each training epoch (LSTSD prepares its teachers here)."""

    def loss(self, logits: torch.Tensor, batch: Batch, epoch: int) -> torch.Tensor:
        raise NotImplementedError

    def end_epoch(self, epoch: int, model: nn.Module) -> None:
        """After each training epoch (LSTSD writes its records; snapshots copy the model)."""

    # -- state ------------------------------------------------------------------------------------------
    @property
    def state_bytes(self) -> int:
        """Bytes of per-sample state the method keeps (its buffer, if any)."""
        return self.buffer.nbytes if self.buffer is not None else 0

    def state_dict(self) -> dict:
        return {"buffer": self.buffer.state_dict()} if self.buffer is not None else {}

    def load_state_dict(self, state: dict) -> None:
        if self.buffer is not None:
            self.buffer.load_state_dict(state["buffer"])

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class CrossEntropy(Method):
    """Plain cross-entropy on the given labels: L = 1/B Σ_i −log s_i,y_i, s = softmax(z)."""

    name = "ce"
    colour = "#404040"  # dark grey: the baseline
    tuned = {  # chosen on validation by `lstsd-edu tune` (benchmarks/tuned_presets.py writes it)
        "digits": {"lr": 0.012290175376727249, "weight_decay": 0.008133501251212226},
        "mnist1d": {"lr": 0.23092310227375798, "weight_decay": 0.0076556733241553735},
        "textsynth": {"lr": 0.21259297392135534, "weight_decay": 0.0014079141710245085},
    }

    def loss(self, logits: torch.Tensor, batch: Batch, epoch: int) -> torch.Tensor:
        return per_sample_ce(logits, batch[1]).mean()


class LabelSmoothing(Method):
    """CE against (1 − ε)·onehot(y) + ε/C (Szegedy et al., 2016); ε = `label_smoothing`, 0.1 by default."""

    name = "ls"
    colour = "#8C8C8C"  # mid grey: CE with smoothed targets
    settings = {"label_smoothing": Setting(0.1, "smoothing ε", Range(0.0, 1.0, high_inclusive=False))}
    search_space = {**OPTIMISER, "label_smoothing": Uniform(0.05, 0.5)}
    tuned = {  # chosen on validation by `lstsd-edu tune` (benchmarks/tuned_presets.py writes it)
        "digits": {
            "lr": 0.018306394207862307,
            "weight_decay": 0.00020421024881889704,
            "label_smoothing": 0.33885268948222996,
        },
        "mnist1d": {
            "lr": 0.02730629675882607,
            "weight_decay": 0.020515274906610825,
            "label_smoothing": 0.26220207384498495,
        },
        "textsynth": {
            "lr": 0.3859952026000127,
            "weight_decay": 1.2942857816016234e-05,
            "label_smoothing": 0.25875079005995255,
        },
    }

    def __init__(self, smoothing: float = 0.1) -> None:
        self.smoothing = smoothing

    @classmethod
    def from_config(cls, config) -> LabelSmoothing:
        return cls(config.label_smoothing)

    def loss(self, logits: torch.Tensor, batch: Batch, epoch: int) -> torch.Tensor:
        return per_sample_ce(logits, batch[1], label_smoothing=self.smoothing).mean()

    def __repr__(self) -> str:
        return f"LabelSmoothing(smoothing={self.smoothing})"
