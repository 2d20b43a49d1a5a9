"""LSTSD as a loss for a training loop you already have: the Trainer's method, driven by your loop.

    lstsd = LSTSDLoss(num_samples=len(train_set), num_classes=10, device=device)
    for epoch in range(epochs):
        for x, y, index in loader:                  # WithIndex + collate_with_index add the index
            logits = model(x.to(device))            # [B, C]
            loss = lstsd(logits, y, index)          # CE + both teachers; records this step
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        lstsd.end_epoch()                           # this epoch's records become teachers

**The protocol.** Call the loss once per training step with the batch's logits [B, C], labels [B]
and sample indices [B] (each sample's position in the training set, 0 … N − 1, the same in every
epoch), and `end_epoch()` once after each epoch's last step. That is all: the loss object counts
the epochs itself (`lstsd.epoch`), which is what the ramp and the teachers' epochs are reckoned
from. Samples may come in any order, in batches of any size (a last partial batch too), from
DataLoader workers; the index and labels may be on the CPU, as a DataLoader gives them (they are
moved to the logits' device). Logits may be bf16 (autocast): the loss is computed in fp32.
Call it for training steps only — a validation loss is plain `F.cross_entropy`.

**Nothing is copied.** The loss object holds the `LSTSD` method the `Trainer` trains with
(`methods/lstsd.py`: its `SnapshotBuffer`, its loss, its ramp) and drives it as the Trainer does:
`setup` when built, `start_epoch` before an epoch's first step (outside autocast), `loss` every
step, `end_epoch` after the epoch, and, under DDP (a process group of several ranks), the same
exchange of records between ranks when an epoch ends (`distributed.sync_buffer`). With the
Trainer's model, batch order and optimiser, a loop with it trains bit for bit as the Trainer does.

**Checkpoints.** `state_dict()` / `load_state_dict()` carry the records and the epoch count; save
them with your model and optimiser. Between epochs is the natural place; mid-epoch works too (the
records taken so far are written into the buffer first; under DDP only the ranks' shared records
of past epochs are complete then).

**Mistakes caught early** (a `ConfigError` naming what is wrong): a setting out of its range (the
rules of `Config`), an index that is not integer [B] or not in [0, N), labels not in [0, C),
logits that are not [B, num_classes] or not on the records' device, lengths that disagree, a call
without gradients (a validation step), more than N samples in one epoch (a forgotten
`end_epoch()`), and with `epochs=` given, a step or `end_epoch()` after the last epoch. Checking
the index and labels reads their smallest and largest values: free where a DataLoader gives
them, on the CPU; a short wait per step if they are already on a GPU.
"""

from __future__ import annotations

import torch

from . import distributed
from .buffer import MAX_EPOCH, SnapshotBuffer
from .config import Config, build_method, check_setting
from .device import get_device
from .errors import ConfigError

# the keyword arguments of LSTSDLoss that are LSTSD's own settings (a test keeps them in step)
LSTSD_SETTINGS = ("lag", "long_mode", "w_long", "w_short", "temperature", "ramp", "storage", "k")


class LSTSDLoss:
    """`loss = lstsd(logits, targets, index)` every step, `lstsd.end_epoch()` after every epoch.

    Args:
        num_samples: N, the size of the training set (indices 0 … N − 1).
        num_classes: C, the width of the logits.
        lag, long_mode, w_long, w_short, temperature, ramp, storage, k: LSTSD's settings, with
            `Config`'s defaults and rules (see `config.py` or `lstsd-edu train --help`).
        epochs: the length of the run, if known: a step after the last epoch is then an error.
        device: where the records live, the device of the logits: a name (`auto`, `cpu`, `cuda`,
            `mps`, as for the Trainer) or a `torch.device` (e.g. `cuda:1`).
    """

    def __init__(
        self,
        num_samples: int,
        num_classes: int,
        *,
        lag: int = Config.lag,
        long_mode: str = Config.long_mode,
        w_long: float = Config.w_long,
        w_short: float = Config.w_short,
        temperature: float = Config.temperature,
        ramp: int = Config.ramp,
        storage: str = Config.storage,
        k: int = Config.k,
        epochs: int | None = None,
        device: str | torch.device = "auto",
    ) -> None:
        settings = dict(lag=lag, long_mode=long_mode, w_long=w_long, w_short=w_short, temperature=temperature)
        settings |= dict(ramp=ramp, storage=storage, k=k)
        self.method = build_method("lstsd", **settings)  # checked by Config's rules
        if epochs is not None:
            check_setting("epochs", epochs)
        device = device if isinstance(device, torch.device) else get_device(device)
        # the Trainer's set-up call; with no known end, the most epochs a record's stamp can count
        self.method.setup(num_samples, num_classes, device, epochs if epochs is not None else MAX_EPOCH)
        self.settings = dict(num_samples=num_samples, num_classes=num_classes, **settings)
        self.epochs = epochs
        self.epoch = 0  # the epoch being trained: epochs ended so far
        self.visited = 0  # samples seen in this epoch
        self.started = False  # whether this epoch's start_epoch has run

    @property
    def buffer(self) -> SnapshotBuffer:
        """The per-sample records (`SnapshotBuffer`): values, stamps, `teachers(epoch, index)`."""
        return self.method.buffer

    @property
    def device(self) -> torch.device:
        return self.buffer.values.device

    def __call__(self, logits: torch.Tensor, targets: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """The batch's LSTSD loss (a scalar, fp32); records log softmax(logits / τ) for its samples."""
        self._check_epoch("a training step")
        if not torch.is_grad_enabled():
            raise ConfigError(
                "LSTSDLoss must be called in training steps, with gradients on: each call records its "
                "samples as this epoch's teachers; compute a validation loss with F.cross_entropy"
            )
        targets, index = self._checked(logits, targets, index)
        visited = self.visited + len(index)
        if visited > self.buffer.num_samples:
            raise ConfigError(
                f"an epoch must visit at most num_samples = {self.buffer.num_samples} samples; got {visited} "
                f"in epoch {self.epoch}: call end_epoch() after each epoch"
            )
        self.visited = visited
        if not self.started:  # before the epoch's first step, outside autocast, as the Trainer does
            with torch.autocast(self.device.type, enabled=False):
                self.method.start_epoch(self.epoch)
            self.started = True
        return self.method.loss(logits, (None, targets, index), self.epoch)  # LSTSD reads no x

    def end_epoch(self) -> None:
        """After the epoch's last step: its records become the teachers of the epochs to come."""
        self._check_epoch("end_epoch()")
        self.method.end_epoch(self.epoch, None)  # LSTSD writes its records; it reads no model
        if distributed.active():  # DDP: every rank gets the records of the samples the others trained on
            distributed.sync_buffer(self.buffer, self.epoch)
        self.epoch, self.visited, self.started = self.epoch + 1, 0, False

    # -- checkpoints ----------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        if self.started:  # mid-epoch: the records this epoch has taken so far go into the buffer now
            self.method.end_epoch(self.epoch, None)
        return {
            "settings": dict(self.settings),
            "epoch": self.epoch,
            "visited": self.visited,
            "method": self.method.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        if state["settings"] != self.settings:
            differ = ", ".join(
                f"{name}={state['settings'].get(name)!r} (here {value!r})"
                for name, value in self.settings.items()
                if state["settings"].get(name) != value
            )
            raise ConfigError(f"an LSTSDLoss state must come from a loss with the same settings; it has {differ}")
        self.method.load_state_dict(state["method"])
        self.epoch, self.visited, self.started = state["epoch"], state["visited"], False

    # -- checks ------------------------------------------------------------------------------------
    def _check_epoch(self, what: str) -> None:
        if self.epochs is not None and self.epoch >= self.epochs:
            raise ConfigError(
                f"LSTSDLoss(epochs={self.epochs}) has ended its last epoch; got {what} in epoch {self.epoch} "
                "(counted from 0): raise epochs or build a new loss"
            )

    def _checked(
        self, logits: torch.Tensor, targets: torch.Tensor, index: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Labels and indices on the logits' device as int64 [B], after checking all three."""
        n, c = self.buffer.num_samples, self.buffer.num_classes
        if not (torch.is_tensor(logits) and logits.is_floating_point() and logits.ndim == 2 and logits.shape[1] == c):
            raise ConfigError(f"logits must be a float tensor [B, num_classes] = [B, {c}]; got {_describe(logits)}")
        if logits.device != self.device:
            raise ConfigError(
                f"logits must be on {self.device}, where the records live (LSTSDLoss(device=...)); got {logits.device}"
            )
        batch = len(logits)
        if batch == 0:
            raise ConfigError("logits must hold at least one sample; got an empty batch")
        for name, t, high in (("targets", targets, c), ("index", index, n)):
            if not (torch.is_tensor(t) and t.ndim == 1 and _integer(t.dtype)):
                raise ConfigError(f"{name} must be an integer tensor [B]; got {_describe(t)}")
            if len(t) != batch:
                raise ConfigError(f"{name} must have one entry per row of logits (B = {batch}); got {len(t)}")
            low, top = torch.stack(t.aminmax()).tolist()  # where t lives: free for a DataLoader's CPU tensors
            if low < 0 or top >= high:
                what = "sample indices in [0, num_samples)" if name == "index" else "class labels in [0, num_classes)"
                raise ConfigError(f"{name} must hold {what} = [0, {high}); got values from {low} to {top}")
        targets, index = targets.to(self.device, torch.long), index.to(self.device, torch.long)
        return targets, index

    def __repr__(self) -> str:
        settings = ", ".join(f"{k}={v!r}" for k, v in self.settings.items())
        return f"LSTSDLoss({settings}, epochs={self.epochs}, device={str(self.device)!r}, epoch={self.epoch})"


def _integer(dtype: torch.dtype) -> bool:
    return not (dtype.is_floating_point or dtype.is_complex or dtype == torch.bool)


def _describe(x: object) -> str:
    return f"shape {list(x.shape)} of {x.dtype}" if torch.is_tensor(x) else f"a {type(x).__name__}"
