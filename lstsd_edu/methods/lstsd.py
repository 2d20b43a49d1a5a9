"""Long short-term sample distillation, and its two ablations.

    lstsd:  w_long · long-term teacher  +  w_short · short-term teacher  +  w_ce · CE
    short:  LSTSD without its long-term term:  w_short · short-term teacher + (1 − w_short) · CE
    long:   LSTSD without its short-term term: w_long · long-term teacher + (1 − w_long) · CE

Each step takes the student's own log softmax(z / τ) as each sample's record for this epoch (no
extra forward pass); the records of epochs e − 1 and e − L (or the previous phase's last epoch)
are its teachers at epoch e (`buffer.SnapshotBuffer`). The loss is `losses.lstsd_loss`; each
ablation removes one teacher and, as for a sample whose teacher does not exist yet, gives its
weight back to CE. (Keeping the *total* distillation weight on one teacher is the other possible
ablation; benchmarks/results/archive/sweep_mnist1d.md reports what it gave in the first sweeps.)

The ramp is part of the method: both weights grow linearly over the first `ramp` epochs,

    w(e) = w · min(1, (e + 1) / ramp)          (e counted from 0; ramp = 0: no ramp)

While no teacher can have weight (epoch 0, or both weights 0) the loss is plain CE, computed by
CE's own code, so such a run trains exactly as `ce` does, bit for bit.

Two ways to compute the same loss. The readable one calls `losses.lstsd_loss` with the batch's
teachers every step. The fused one (`fused.py`, the default wherever PyTorch's softmax-backward
kernel exists) uses that the teachers of epoch e are complete before e starts and do not change
during it: `start_epoch` folds both teachers, their weights and τ² into one table of per-sample
constants for all N samples (`fused.teacher_mixture`, `fused.mixture_table`), a step gathers its
B columns and computes loss and gradient in one autograd node (`fused.fused_loss`), and the
steps only keep their records, which `end_epoch` writes into the buffer in one call. On a small
model every small operation per step shows in the epoch time (benchmarks/cost.py), so what can
be done once per epoch is. The table costs N·(2C + 2)·4 bytes and the kept records N·C·4 bytes
while the epoch runs; above `MAX_TABLE_BYTES` of table (huge N·C, where steps are slow anyway)
each step builds its own columns and writes its own records. Tests check both ways give the
same training, up to float rounding (the fused path sums the terms in another order). The readable
path is `fused=False`, or `method.fused = False` on a built trainer's method; trained so, the
loop written out in chapter 03 gives the same history bit for bit.
"""

from __future__ import annotations

import torch
from torch import nn

from .. import fused as fused_path
from ..buffer import SnapshotBuffer
from ..losses import lstsd_loss, plain_ce_loss
from ..space import OPTIMISER, Integers, OneOf, Uniform
from .base import Batch, Method

# what a tuner searches: the optimiser, the temperature and ramp, and each variant's own teachers
DISTILLATION = {**OPTIMISER, "temperature": OneOf((1.0, 2.0, 4.0)), "ramp": Integers(0, 30)}
LONG_TERM = {"lag": Integers(2, 30), "long_mode": OneOf(("sliding", "phase"))}


class SampleDistillation(Method):
    """Both teachers with weights `w_long`, `w_short` (either may be 0); see the module docstring."""

    name = "lstsd"
    colour = "#D55E00"  # vermillion: the method this toolkit teaches, the most salient
    MAX_TABLE_BYTES = 512 * 2**20

    def __init__(
        self,
        w_long: float,
        w_short: float,
        lag: int,
        long_mode: str = "sliding",
        temperature: float = 1.0,
        ramp: int = 0,
        storage: str = "dense",
        k: int = 5,
        dtype: torch.dtype = torch.float16,
        fused: bool | None = None,
    ) -> None:
        self.w_long, self.w_short, self.lag, self.long_mode = w_long, w_short, lag, long_mode
        self.temperature, self.ramp, self.storage, self.k, self.dtype = temperature, ramp, storage, k, dtype
        self.fused = fused_path.available() if fused is None else fused  # see the module docstring

    @classmethod
    def from_config(cls, config) -> SampleDistillation:
        return cls(
            config.w_long,
            config.w_short,
            config.lag,
            config.long_mode,
            config.temperature,
            config.ramp,
            config.storage,
            config.k,
        )

    def setup(self, num_samples: int, num_classes: int, device: torch.device, epochs: int) -> None:
        self.buffer = SnapshotBuffer(
            num_samples, num_classes, self.lag, self.long_mode, device, self.dtype, self.storage, self.k
        )
        self.table: torch.Tensor | None = None  # [2C + 2, N], this epoch's per-sample constants
        self.table_fits = num_samples * (2 * num_classes + 2) * 4 <= self.MAX_TABLE_BYTES
        self.taken: list[tuple[torch.Tensor, torch.Tensor]] = []  # this epoch's (index, log_q)

    @property
    def use_table(self) -> bool:
        """Whether steps read their constants from the per-epoch table: on the fused path, when the
        table fits. Read when it is needed, so `method.fused = False` after `setup` (a trainer built
        by `experiments.make_trainer`) trains on the readable path from the next step on."""
        return self.fused and self.table_fits

    def weights(self, epoch: int) -> tuple[float, float]:
        """(w_long, w_short) in effect at `epoch`, after the ramp."""
        scale = min(1.0, (epoch + 1) / self.ramp) if self.ramp else 1.0
        return scale * self.w_long, scale * self.w_short

    def teaching(self, epoch: int) -> bool:
        """Whether any teacher can have weight at `epoch`: not before the first records (epoch 0)."""
        return epoch > 0 and any(self.weights(epoch))

    def columns(self, epoch: int, index: torch.Tensor) -> torch.Tensor:
        """The fused loss's constants for samples `index` at `epoch`, straight from the buffer: [2C + 2, B]."""
        teachers = self.buffer.teachers(epoch, index)
        return fused_path.mixture_table(fused_path.teacher_mixture(teachers, *self.weights(epoch), self.temperature))

    def start_epoch(self, epoch: int) -> None:
        self.taken = []
        if self.use_table and self.teaching(epoch):  # one column per sample, one gather per step
            every = torch.arange(self.buffer.num_samples, device=self.buffer.values.device)
            self.table = torch.cat([self.columns(epoch, chunk) for chunk in every.split(65536)], 1)

    def loss(self, logits: torch.Tensor, batch: Batch, epoch: int) -> torch.Tensor:
        _, y, index = batch
        if not self.teaching(epoch):  # plain CE, computed as CE computes it, bit for bit
            loss, log_q = plain_ce_loss(logits, y, self.temperature)
        elif not self.fused:  # the readable loss, teachers read from the buffer
            teachers = self.buffer.teachers(epoch, index)
            loss, log_q = lstsd_loss(logits, y, teachers, *self.weights(epoch), self.temperature)
        else:  # read before this step writes its records (per-step columns)
            columns = self.table.index_select(1, index) if self.use_table else self.columns(epoch, index)
            loss, log_q = fused_path.fused_loss(logits, y, columns, self.temperature)
        # the student at τ: a teacher for later epochs
        if self.use_table:
            self.taken.append((index, log_q))  # written by end_epoch, all at once
        else:
            self.buffer.record(epoch, index, log_q)
        return loss

    def end_epoch(self, epoch: int, model: nn.Module) -> None:
        if self.taken:
            index, log_q = (torch.cat(parts) for parts in zip(*self.taken, strict=True))
            self.buffer.record(epoch, index, log_q)
            self.taken = []

    @property
    def state_bytes(self) -> int:
        table = self.table.numel() * self.table.element_size() if self.table is not None else 0
        return self.buffer.nbytes + table

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(w_long={self.w_long}, w_short={self.w_short}, lag={self.lag}, "
            f"long_mode={self.long_mode!r}, temperature={self.temperature}, ramp={self.ramp})"
        )


class LSTSD(SampleDistillation):
    """Both teachers: the method of the paper."""

    name = "lstsd"
    search_space = {**DISTILLATION, "w_long": Uniform(0.05, 0.9), "w_short": Uniform(0.05, 0.9), **LONG_TERM}
    tuned = {  # chosen on validation by `lstsd-edu tune` (benchmarks/tuned_presets.py writes it)
        "digits": {
            "lr": 0.05,
            "weight_decay": 0.0005,
            "temperature": 2.0,
            "ramp": 20,
            "w_long": 0.3,
            "w_short": 0.5,
            "lag": 20,
            "long_mode": "sliding",
        },
        "mnist1d": {
            "lr": 0.17673461563314244,
            "weight_decay": 0.005621852055078061,
            "temperature": 1.0,
            "ramp": 20,
            "w_long": 0.7232148438607598,
            "w_short": 0.052916604144930074,
            "lag": 3,
            "long_mode": "sliding",
        },
        "textsynth": {
            "lr": 0.2,
            "weight_decay": 0.0005,
            "temperature": 1.0,
            "ramp": 8,
            "w_long": 0.6,
            "w_short": 0.2,
            "lag": 8,
            "long_mode": "sliding",
        },
    }


class ShortTerm(SampleDistillation):
    """Only the previous epoch teaches (weight `w_short`)."""

    name = "short"
    colour = "#E69F00"  # orange
    search_space = {**DISTILLATION, "w_short": Uniform(0.1, 0.9)}
    tuned = {  # chosen on validation by `lstsd-edu tune` (benchmarks/tuned_presets.py writes it)
        "digits": {"lr": 0.05, "weight_decay": 0.0005, "temperature": 2.0, "ramp": 20, "w_short": 0.5},
        "mnist1d": {
            "lr": 0.021455906861821333,
            "weight_decay": 0.022423523212619777,
            "temperature": 2.0,
            "ramp": 4,
            "w_short": 0.5977861558341453,
        },
        "textsynth": {"lr": 0.2, "weight_decay": 0.0005, "temperature": 1.0, "ramp": 8, "w_short": 0.2},
    }

    @classmethod
    def from_config(cls, config) -> ShortTerm:
        return cls(0.0, config.w_short, 1, "sliding", config.temperature, config.ramp, config.storage, config.k)


class LongTerm(SampleDistillation):
    """Only the epoch L back (or the previous phase's last epoch) teaches (weight `w_long`)."""

    name = "long"
    colour = "#CC79A7"  # reddish purple
    search_space = {**DISTILLATION, "w_long": Uniform(0.1, 0.9), **LONG_TERM}
    tuned = {  # chosen on validation by `lstsd-edu tune` (benchmarks/tuned_presets.py writes it)
        "digits": {
            "lr": 0.04370335775478629,
            "weight_decay": 0.010242204444741186,
            "temperature": 1.0,
            "ramp": 12,
            "w_long": 0.17679359366585354,
            "lag": 30,
            "long_mode": "phase",
        },
        "mnist1d": {
            "lr": 0.05795634278485432,
            "weight_decay": 0.011949190267565312,
            "temperature": 2.0,
            "ramp": 28,
            "w_long": 0.3906362595913524,
            "lag": 13,
            "long_mode": "phase",
        },
        "textsynth": {
            "lr": 0.2682788281872784,
            "weight_decay": 0.00041552005756644494,
            "temperature": 2.0,
            "ramp": 15,
            "w_long": 0.37417027781591083,
            "lag": 4,
            "long_mode": "sliding",
        },
    }

    @classmethod
    def from_config(cls, config) -> LongTerm:
        return cls(
            config.w_long, 0.0, config.lag, config.long_mode, config.temperature, config.ramp, config.storage, config.k
        )
