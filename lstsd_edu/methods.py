"""Training methods: each one turns a batch's logits into a loss, with one interface.

    method.setup(num_samples, num_classes, device)     # allocate per-sample state, if any
    loss = method.loss(logits, (x, y, index), epoch)   # called once per training step
    method.end_epoch(epoch, model)                      # called after each epoch

The trainer knows nothing else about a method, so plain CE, label smoothing, the three
sample-distillation variants (and the peers) are trained by exactly the same loop.

Sample distillation — `short`, `long` and `lstsd` are one class with different weights:

    lstsd:  w_long · long-term teacher  +  w_short · short-term teacher  +  w_ce · CE
    short:  (w_long + w_short) on the short-term teacher only
    long:   (w_long + w_short) on the long-term teacher only

The one-teacher ablations keep LSTSD's *total* distillation weight, so a comparison asks "do two
teachers beat one?" rather than "does more distillation beat less?".
"""
from __future__ import annotations

import torch
from torch import nn

from .buffer import SnapshotBuffer
from .errors import ConfigError, check_choice, check_range
from .losses import lstsd_loss, per_sample_ce

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # (x, y, index)


class Method:
    """Plain cross-entropy; the base class of every method."""

    name = "ce"
    extra_forward_passes = 0  # forward passes per step beyond the student's own
    buffer: SnapshotBuffer | None = None

    def setup(self, num_samples: int, num_classes: int, device: torch.device) -> None:
        """Allocate per-sample state for a training set of `num_samples` samples."""

    def loss(self, logits: torch.Tensor, batch: Batch, epoch: int) -> torch.Tensor:
        return per_sample_ce(logits, batch[1]).mean()

    def end_epoch(self, epoch: int, model: nn.Module) -> None:
        """Hook after each training epoch (used by methods that keep model snapshots)."""

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


CrossEntropy = Method


class LabelSmoothing(Method):
    """CE against (1 − ε)·onehot(y) + ε/C (Szegedy et al., 2016); ε = 0.1 by default."""

    name = "ls"

    def __init__(self, smoothing: float = 0.1) -> None:
        check_range("label_smoothing", smoothing, 0.0, 1.0, high_inclusive=False)
        self.smoothing = smoothing

    def loss(self, logits: torch.Tensor, batch: Batch, epoch: int) -> torch.Tensor:
        return per_sample_ce(logits, batch[1], label_smoothing=self.smoothing).mean()

    def __repr__(self) -> str:
        return f"LabelSmoothing(smoothing={self.smoothing})"


class SampleDistillation(Method):
    """Long short-term sample distillation (see `losses.lstsd_loss` for the equation).

    Each step reads every sample's teachers from the buffer, computes the loss, then records the
    step's own log softmax(z / τ) as that sample's record for this epoch. No extra forward pass.
    """

    def __init__(self, w_long: float, w_short: float, lag: int, long_mode: str = "sliding",
                 temperature: float = 1.0, name: str = "lstsd", ramp: int = 0,
                 storage: str = "dense", k: int = 5, dtype: torch.dtype = torch.float16) -> None:
        check_range("long_weight", w_long, 0.0, 1.0)
        check_range("short_weight", w_short, 0.0, 1.0)
        if w_long + w_short > 1.0 + 1e-9:
            raise ConfigError(f"long_weight + short_weight must be at most 1; got "
                              f"{w_long} + {w_short} = {w_long + w_short:g}")
        check_range("lag", lag, 1, 1000, integer=True)
        check_choice("long_mode", long_mode, ("sliding", "phase"))
        check_range("temperature", temperature, 0.0, 100.0, low_inclusive=False)
        check_range("ramp", ramp, 0, 100_000, integer=True)
        self.w_long, self.w_short, self.lag, self.long_mode = w_long, w_short, lag, long_mode
        self.ramp = ramp
        self.temperature, self.name, self.storage, self.k, self.dtype = temperature, name, storage, k, dtype

    def setup(self, num_samples: int, num_classes: int, device: torch.device) -> None:
        self.buffer = SnapshotBuffer(num_samples, num_classes, self.lag, self.long_mode, device,
                                     self.dtype, self.storage, self.k)

    def loss(self, logits: torch.Tensor, batch: Batch, epoch: int) -> torch.Tensor:
        _, y, index = batch
        teachers = self.buffer.teachers(epoch, index)  # read before this step writes
        scale = min(1.0, (epoch + 1) / self.ramp) if self.ramp else 1.0  # linear ramp-up of the weights
        loss, log_q = lstsd_loss(logits, y, teachers, scale * self.w_long, scale * self.w_short,
                                 self.temperature)
        self.buffer.record(epoch, index, log_q)  # the student at τ: a teacher for later epochs
        return loss

    def __repr__(self) -> str:
        return (f"SampleDistillation(name={self.name!r}, w_long={self.w_long}, w_short={self.w_short}, "
                f"lag={self.lag}, long_mode={self.long_mode!r}, temperature={self.temperature})")


def lstsd(w_long: float, w_short: float, lag: int, long_mode: str = "sliding",
          temperature: float = 1.0, **options) -> SampleDistillation:
    """Both teachers: the method of the paper."""
    return SampleDistillation(w_long, w_short, lag, long_mode, temperature, "lstsd", **options)


def short_term(weight: float, temperature: float = 1.0, **options) -> SampleDistillation:
    """Only the previous epoch teaches."""
    return SampleDistillation(0.0, weight, 1, "sliding", temperature, "short", **options)


def long_term(weight: float, lag: int, long_mode: str = "sliding", temperature: float = 1.0,
              **options) -> SampleDistillation:
    """Only the epoch L back (or the previous phase's last epoch) teaches."""
    return SampleDistillation(weight, 0.0, lag, long_mode, temperature, "long", **options)


METHODS = ("ce", "ls", "short", "long", "lstsd")


def build_method(name: str, *, w_long: float, w_short: float, lag: int, long_mode: str,
                 temperature: float, ramp: int = 0, label_smoothing: float = 0.1,
                 **options) -> Method:
    """Build a method by name from the LSTSD hyperparameters (ignored by methods that lack them)."""
    check_choice("method", name, METHODS)
    total = w_long + w_short
    if name == "ce":
        return CrossEntropy()
    if name == "ls":
        return LabelSmoothing(label_smoothing)
    if name == "short":
        return short_term(total, temperature, ramp=ramp, **options)
    if name == "long":
        return long_term(total, lag, long_mode, temperature, ramp=ramp, **options)
    return lstsd(w_long, w_short, lag, long_mode, temperature, ramp=ramp, **options)
