"""SnapshotBuffer: each training sample's own past predictions, the teachers of LSTSD.

During epoch e the training forward pass already computes the student's logits z_i^(e) for every
sample i in the batch. We keep a detached copy of them, so that later epochs can use them as
teachers at no extra forward-pass cost:

    short-term teacher of i at epoch e:  z_i^(e-1)                       (up-to-date cues)
    long-term teacher of i at epoch e:   z_i^(e-L)              sliding  (a guaranteed gap of L)
                                         z_i^(floor(e/L)·L - 1) phase    (last epoch of the
                                                                          previous phase of L)

Each sample was seen by a different model state when its record was taken, so every sample has
its own, "unique" teachers.

Storage is a ring of slots, one record per sample per slot:

    values [S, N, C]  fp16 log-probabilities log softmax(z / τ) at the method's temperature: logits
                      normalised so that their exponentials sum to 1. Unlike probabilities they
                      do not underflow in fp16, and unlike raw logits they need no softmax when
                      read: the student computes them anyway for its KL term, so recording is free.
    stamp  [S, N]     int16, the epoch each record was taken in; -1 = empty

`sliding` needs S = L + 1 slots (epoch e goes to slot e mod (L+1)); `phase` needs S = 3: the last
epoch of each phase goes to slot 2, where it teaches the whole next phase, and the other epochs
alternate between slots 0 and 1. A record is a teacher only if its stamp is the
epoch asked for, so samples not seen in some epoch, the first epochs, and slots that wrapped
around all come back as `valid = False`, and the loss gives their weight back to cross-entropy.

With `storage="topk"` only the k largest log-probabilities and their class indices are kept per
record; the other classes get probability 0 and the k kept ones are renormalised. Memory per slot falls from
N·C·2 bytes to N·k·4 bytes (value + class index), which is what makes ImageNet-sized problems fit.
"""

from __future__ import annotations

from typing import NamedTuple

import pandas as pd
import torch

from .errors import ConfigError, Range, check_choice, check_range

MODES = ("sliding", "phase")
STORAGES = ("dense", "topk")
LAG = Range(1, 1000, integer=True)
RECORD_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)  # floating point only
MAX_EPOCH = torch.iinfo(torch.int16).max  # stamps are int16
FP16_MAX = 6.0e4  # log-probabilities are clamped into fp16's finite range before storing


class Teachers(NamedTuple):
    """Teacher distributions for one batch, and which samples have a teacher yet."""

    log_probs: torch.Tensor  # [2, B, C]: row 0 long-term, row 1 short-term; log softmax(z_t / τ)
    valid: torch.Tensor  # [2, B] bool

    @property
    def probs(self) -> torch.Tensor:
        return self.log_probs.exp()  # [2, B, C]

    @property
    def long(self) -> torch.Tensor:
        return self.probs[0]

    @property
    def short(self) -> torch.Tensor:
        return self.probs[1]


class SnapshotBuffer:
    """Per-sample logits from past epochs, indexed by sample index.

    Args:
        num_samples: N, the size of the training set (indices are 0 … N-1).
        num_classes: C.
        lag: L ≥ 1, the long-term lag (sliding) or phase length (phase), in epochs.
        mode: `sliding` or `phase`, see the module docstring.
        device: where the records live (the training device, so reads and writes never sync).
        dtype: storage dtype of the logits (fp16 by default; fp32 for exactness studies).
        storage: `dense` (all C logits) or `topk` (the k largest, see `k`).
        k: how many logits a `topk` record keeps.
    """

    def __init__(
        self,
        num_samples: int,
        num_classes: int,
        lag: int,
        mode: str = "sliding",
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float16,
        storage: str = "dense",
        k: int = 5,
    ) -> None:
        check_range("num_samples", num_samples, 1, float("inf"), integer=True)
        check_range("num_classes", num_classes, 2, float("inf"), integer=True)
        LAG.check("lag", lag)
        check_choice("long_mode", mode, MODES)
        check_choice("storage", storage, STORAGES)
        check_choice("dtype", dtype, RECORD_DTYPES)
        try:
            device = torch.device(device)
        except (RuntimeError, TypeError) as error:
            raise ConfigError(
                f"device must be a torch.device or a name such as 'cpu' or 'cuda:0'; got {device!r}"
            ) from error
        if storage == "topk":
            check_range("k", k, 1, num_classes, integer=True)
        self.num_samples, self.num_classes, self.lag, self.mode = num_samples, num_classes, lag, mode
        self.storage, self.k = storage, (k if storage == "topk" else num_classes)
        self.slots = lag + 1 if mode == "sliding" else 3
        width = self.k if storage == "topk" else num_classes
        self.values = torch.zeros(self.slots, num_samples, width, dtype=dtype, device=device)
        self.classes = (
            torch.zeros(self.slots, num_samples, width, dtype=torch.int16, device=device) if storage == "topk" else None
        )
        self.stamp = torch.full((self.slots, num_samples), -1, dtype=torch.int16, device=device)
        self._cache_key: tuple[int, ...] | None = None

    # -- which epoch teaches, and where its record lives -----------------------------------------
    def short_epoch(self, epoch: int) -> int:
        """The epoch whose records are the short-term teachers at `epoch` (may be negative)."""
        return epoch - 1

    def long_epoch(self, epoch: int) -> int:
        """The epoch whose records are the long-term teachers at `epoch` (may be negative)."""
        if self.mode == "sliding":
            return epoch - self.lag
        return (epoch // self.lag) * self.lag - 1

    def slot(self, epoch: int) -> int:
        """The ring slot that holds (or will hold) the records taken during `epoch`."""
        if self.mode == "sliding":
            return epoch % self.slots
        return 2 if epoch % self.lag == self.lag - 1 else epoch % 2

    # -- writing and reading --------------------------------------------------------------------
    @torch.no_grad()
    def record(self, epoch: int, index: torch.Tensor, log_probs: torch.Tensor) -> None:
        """Store the student's log-probabilities [B, C] for samples `index` [B], taken in `epoch`."""
        if not 0 <= epoch < MAX_EPOCH:
            raise ConfigError(f"epoch must be an integer in [0, {MAX_EPOCH}); got {epoch}")
        values = log_probs.detach().clamp_min(-FP16_MAX)  # [B, C], finite in fp16
        slot = self.slot(epoch)
        if self.classes is not None:
            values, classes = values.topk(self.k, dim=1)  # [B, k], [B, k]
            self.classes[slot].index_copy_(0, index, classes.to(torch.int16))
        self.values[slot].index_copy_(0, index, values.to(self.values.dtype))
        self.stamp[slot].index_fill_(0, index, epoch)

    @torch.no_grad()
    def log_probs(self, epochs: list[int], index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Records taken during each of `epochs` for samples `index`.

        Returns (log-probabilities [E, B, C] fp32, valid [E, B] bool), E = len(epochs). A record
        is valid only if it was taken in exactly that epoch; negative epochs are never valid.
        Classes a `topk` record did not keep get probability 0; the kept ones are renormalised.
        Every log-probability returned is finite (≥ −FP16_MAX), so p · log p needs no special case.
        """
        slots, wanted = self._lookup(tuple(epochs))
        rows = (slots[:, None], index[None, :])  # one gather for all E epochs
        valid = self.stamp[rows] == wanted[:, None]  # [E, B]
        values = self.values[rows].float()  # [E, B, width]
        if self.classes is not None:
            # classes not kept: −FP16_MAX, so that exp gives exactly 0 and every log stays finite
            dense = torch.full((*values.shape[:2], self.num_classes), -FP16_MAX, device=values.device)
            values = dense.scatter(2, self.classes[rows].long(), values).log_softmax(2)  # [E, B, C]
        return values, valid

    def _lookup(self, epochs: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        """Slot and stamp to look for, as device tensors, cached (a step asks the same each time)."""
        if self._cache_key != epochs:
            device = self.values.device
            slots = [self.slot(max(e, 0)) for e in epochs]
            wanted = [e if e >= 0 else -2 for e in epochs]  # -2 matches nothing, not even empty (-1)
            self._cache = (
                torch.tensor(slots, device=device),
                torch.tensor(wanted, device=device, dtype=self.stamp.dtype),
            )
            self._cache_key = epochs
        return self._cache

    def teachers(self, epoch: int, index: torch.Tensor) -> Teachers:
        """Long- and short-term teachers of a batch at `epoch` (row 0 long, row 1 short)."""
        return Teachers(*self.log_probs([self.long_epoch(epoch), self.short_epoch(epoch)], index))

    # -- bookkeeping ------------------------------------------------------------------------------
    @property
    def nbytes(self) -> int:
        """Memory held by the records, in bytes (values, class indices for topk, stamps)."""
        tensors = [self.values, self.stamp] + ([self.classes] if self.classes is not None else [])
        return sum(t.numel() * t.element_size() for t in tensors)

    def state_dict(self) -> dict:
        state = {"values": self.values, "stamp": self.stamp}
        if self.classes is not None:
            state["classes"] = self.classes
        return state

    def load_state_dict(self, state: dict) -> None:
        for name, tensor in state.items():
            getattr(self, name).copy_(tensor)

    def __repr__(self) -> str:
        return (
            f"SnapshotBuffer(N={self.num_samples}, C={self.num_classes}, lag={self.lag}, "
            f"mode={self.mode!r}, slots={self.slots}, storage={self.storage!r}, "
            f"bytes={self.nbytes:,})"
        )


def buffer_bytes(
    num_samples: int, num_classes: int, slots: int, storage: str = "dense", k: int = 5, value_bytes: int = 2
) -> int:
    """The memory arithmetic of `SnapshotBuffer.nbytes`, without allocating anything."""
    width = k if storage == "topk" else num_classes
    per_record = width * value_bytes + (width * 2 if storage == "topk" else 0) + 2  # + int16 stamp
    return num_samples * slots * per_record


# -- memory at scale --------------------------------------------------------------------------------
# A dense record is C fp16 values; the buffer keeps one per sample per slot — L + 1 slots in
# `sliding` mode, 3 in `phase` mode — so N · slots · (2C + 2) bytes with the int16 stamp. A
# `topk` record keeps k values and k int16 class ids: N · slots · (4k + 2) bytes. Under DDP
# every rank holds the whole buffer (distributed.py), so these are bytes *per GPU*.
SCALES = {"CIFAR-100": (50_000, 100), "ImageNet-1k": (1_281_167, 1000)}


def memory_table(lag: int = 10, k: int = 10, scales: dict[str, tuple[int, int]] = SCALES) -> pd.DataFrame:
    """Buffer bytes for each problem (N samples, C classes) and layout, by `buffer_bytes`.

    Layouts: dense and top-k storage, each with `sliding` (lag + 1 slots) and `phase` (3 slots).
    `vs_dense_sliding` is the fraction of the dense sliding buffer a layout needs.
    """
    rows = []
    for problem, (n, c) in scales.items():
        for storage in STORAGES:
            for mode in MODES:
                slots = SnapshotBuffer(1, 2, lag, mode).slots  # the buffer's own slot rule
                rows.append(
                    dict(
                        problem=problem,
                        samples=n,
                        classes=c,
                        storage=storage,
                        k=k if storage == "topk" else c,
                        mode=mode,
                        slots=slots,
                        bytes=buffer_bytes(n, c, slots, storage, k),
                    )
                )
    table = pd.DataFrame(rows)
    dense_sliding = table[(table.storage == "dense") & (table["mode"] == "sliding")].set_index("problem").bytes
    table["vs_dense_sliding"] = table.bytes / table.problem.map(dense_sliding)
    table["memory"] = table.bytes.map(human_bytes)
    return table


def human_bytes(n: float) -> str:
    """1536 -> '1.5 KiB'; binary units."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
