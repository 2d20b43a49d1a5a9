"""One device-aware training loop for every method.

    trainer = Trainer(model, method, data, epochs=60, seed=0)
    history = trainer.fit()          # pandas DataFrame, one row per epoch

What it does, and why:

* **device** `auto` picks cuda → mps → cpu (`get_device`, the only place a device is named).
  The data, the model and the method's buffer all live there, so a step never copies.
* **bf16 autocast on CUDA only**; CPU and MPS run in fp32.
* **No per-step host synchronisation**: loss and accuracy are summed on the device and read once
  per epoch, so the GPU is never stalled waiting for Python.
* **SGD + momentum with a cosine schedule** stepped per batch (a method may bring its own).
* **Progress**: a tqdm bar over epochs (notebook-aware through `tqdm.auto`), `progress=False`
  to silence it.
* **Checkpoints** carry model, optimiser, scheduler, method (buffer), RNG states and history,
  so 10 epochs straight and 5 + resume + 5 give identical histories on CPU. `fit(checkpoint=path)`
  writes one after every epoch (atomically), so an interrupted run resumes from its last finished
  epoch. A checkpoint also describes its run (`describe`: the model and its size, the method and
  its settings, the data's fingerprint, the optimiser's settings); loading it into a trainer
  that differs is refused with a message naming each difference.
* **Evaluation** after every epoch on the validation split (its labels carry the same noise as
  the training labels: what a user can select on) and on the test split; a split the data does
  not have gives NaN. The history holds both; choosing an epoch is done on `val_acc`
  (`experiments.Run.summary`), never on `test_acc`.
* **Divergence** is caught, not trained through: after each epoch, the run stops if its mean
  training loss ℓ_e is not finite (NaN, ±inf) or has exploded,

      ℓ_e > 100 · max(ln C, ℓ_1)        C classes; ℓ_1 the first epoch's mean training loss

  where ln C is the cross-entropy of a uniform prediction — where a freshly initialised classifier
  starts. A hundred times that is no slow start or noisy epoch: it is the loss of logits gone to
  hundreds (SGD with far too large a learning rate reaches 1e10 within the first epoch, and then,
  its weights wrecked, settles at chance, which the first epoch's loss alone would not reveal).
  The history keeps the epochs trained (the last one is the one that diverged), `diverged_epoch`
  says which, and one `DivergedWarning` names the run. The check reads the epoch's loss, already
  summed on the device, so it costs nothing; under DDP every rank sees the same summed loss and
  stops at the same epoch.
* **Diagnostics** (`diagnostics=True`): after each epoch, each sample's divergence from its
  teachers is computed from the buffer (`diagnostics.epoch_divergences`), and for every method
  the history gains `flipped_as_given`, `flipped_as_true` and `clean_correct`
  (`diagnostics.memorisation`: what the model predicts for the flipped and the clean training
  samples). Off by default; when off, nothing is computed.

`seconds` in the history is the wall time of the training part of the epoch (not evaluation),
plus any training the method did elsewhere for that epoch of its budget (`Method.prior_seconds`):
the number the cost comparisons use.
"""

from __future__ import annotations

import math
import numbers
import random
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from .config import check_setting
from .data import Dataset, TensorData
from .data.cache import READ_ERRORS, atomic_write
from .device import DEVICES, get_device, seed_everything
from .diagnostics import MEMORISATION, epoch_divergences, memorisation
from .distributed import Replicas
from .errors import ConfigError, Range
from .methods.base import Method
from .runs import data_fingerprint

__all__ = ["DEVICES", "SEED", "DivergedWarning", "Trainer", "as_seed", "get_device", "seed_everything"]

SEED = Range(0, 2**32 - 1, integer=True)  # what torch, numpy and random all accept
EXPLOSION = 100  # an epoch's training loss above this × max(ln C, the first epoch's): diverged


def as_seed(name: str, value) -> int:
    """`value` as a seed (an integer in [0, 2³² − 1]; numpy integers too), else a ConfigError."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = int(value)
    SEED.check(name, value)
    return value


class DivergedWarning(RuntimeWarning):
    """A run's training loss became NaN or exploded; it was stopped (see the module docstring)."""


class Trainer:
    """Train `model` with `method` on `data` for `epochs` epochs; see the module docstring."""

    def __init__(
        self,
        model: nn.Module,
        method: Method,
        data: Dataset,
        *,
        epochs: int,
        batch_size: int = 128,
        lr: float = 0.1,
        momentum: float = 0.9,
        weight_decay: float = 5e-4,
        device: str = "auto",
        amp: bool = True,
        seed: int = 0,
        progress: bool = True,
        diagnostics: bool = False,
        eval_batch_size: int = 1024,
        name: str | None = None,
    ) -> None:
        settings = dict(epochs=epochs, batch_size=batch_size, lr=lr, momentum=momentum, weight_decay=weight_decay)
        for key, value in settings.items():  # the limits of the Config fields of the same names
            check_setting(key, value)
        Range(1, 1 << 30, integer=True).check("eval_batch_size", eval_batch_size)
        seed = as_seed("seed", seed)
        for key, value, kind in (("model", model, nn.Module), ("method", method, Method), ("data", data, Dataset)):
            if not isinstance(value, kind):
                raise ConfigError(f"{key} must be a {kind.__name__}; got {type(value).__name__}")
        self.device = get_device(device)
        self.data = data.to(self.device)
        self.model = model.to(self.device)
        check_outputs(self.model, self.data)
        if self.device.type == "cuda" and getattr(model, "channels_last", False):  # CIFAR ResNets
            self.model = self.model.to(memory_format=torch.channels_last)  # NHWC: fastest bf16 convs
        # DDP under torchrun (distributed.py): shards each batch over the ranks, all-reduces the
        # gradients, shares the buffer's records. In a single process it changes nothing.
        self.replicas = Replicas(self.model)
        if self.replicas.active and not method.supports_ddp:
            raise ConfigError(
                f"method {method.name} cannot train on {self.replicas.size} ranks: its per-sample state "
                "is not shared between them (supports_ddp = False); train it in one process"
            )
        self.method = method
        self.name = name or f"{method.name} seed {seed}"  # how a warning names this run
        self.settings = settings
        self.method.setup(len(self.data.train), self.data.num_classes, self.device, epochs)
        self.epochs, self.batch_size, self.eval_batch_size = epochs, batch_size, eval_batch_size
        self.amp = amp and self.device.type == "cuda"
        self.progress, self.diagnostics = progress, diagnostics
        self.optimizer = torch.optim.SGD(
            self.model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=momentum > 0
        )
        steps_per_epoch = math.ceil(len(self.data.train) / batch_size)
        self.scheduler = method.make_scheduler(
            self.optimizer, epochs, steps_per_epoch
        )  # cosine unless the method's own
        self.generator = torch.Generator().manual_seed(seed)  # shuffling order
        self.epoch = 0  # epochs completed
        self.diverged_epoch: int | None = None  # the epoch (1-based) the run diverged in, if it did
        self.rows: list[dict] = []
        self._fingerprint: str | None = None  # of the data, computed when a checkpoint needs it
        self.divergence_frames: list[pd.DataFrame] = []

    # -- the loop -----------------------------------------------------------------------------------
    def fit(self, until: int | None = None, checkpoint: str | Path | None = None) -> pd.DataFrame:
        """Train up to epoch `until` (default: all `epochs`) and return the history so far; stop
        early if the run diverges. With `checkpoint`, save one there after every epoch."""
        until = self.epoch if self.diverged_epoch else self.epochs if until is None else until
        bar = tqdm(
            range(self.epoch, until), desc=self.method.name, unit="epoch", disable=not self.progress, leave=False
        )
        for _ in bar:
            row = self.train_epoch()
            if checkpoint is not None:
                self.save_checkpoint(checkpoint)
            bar.set_postfix(loss=f"{row['train_loss']:.3f}", val_acc=f"{row['val_acc']:.3f}")
            if self.diverged_epoch:
                break
        bar.close()
        return self.history

    def train_epoch(self) -> dict:
        epoch, model = self.epoch, self.model
        model.train()
        lr = self.optimizer.param_groups[0]["lr"]
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device, dtype=torch.long)
        start = time.perf_counter()
        self.method.start_epoch(epoch)
        batches = self.data.train.batches(self.batch_size, generator=self.generator)
        for batch in self.replicas.shard(batches):  # DDP: this rank's share of each batch
            x, y, _ = batch
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
                logits = self.replicas.model(x)  # [B, C]; the DDP wrapper under torchrun
                loss = self.method.loss(logits, batch, epoch)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.scheduler.step()
            loss_sum += loss.detach() * y.shape[0]
            correct += (logits.detach().argmax(1) == y).sum()
        self.method.end_epoch(epoch, model)  # e.g. LSTSD writes the epoch's records into its buffer
        # DDP: every rank gets the epoch's records of all samples; the sums cover all ranks
        loss_sum, correct = self.replicas.end_epoch(self.method.buffer, epoch, loss_sum, correct)
        train_loss, train_correct = loss_sum.item(), correct.item()  # the epoch's one sync
        seconds = time.perf_counter() - start + self.method.prior_seconds(epoch)
        n = len(self.data.train)
        val_loss, val_acc = self.evaluate(self.data.val)  # noisy labels, as the training labels
        test_loss, test_acc = self.evaluate(self.data.test)
        row = dict(
            epoch=epoch + 1,
            lr=lr,
            train_loss=train_loss / n,
            train_acc=train_correct / n,
            val_loss=val_loss,
            val_acc=val_acc,
            test_loss=test_loss,
            test_acc=test_acc,
            seconds=seconds,
        )
        if self.diagnostics:  # any method, CE included: how much of the label noise it predicts
            row.update(memorisation(self.model, self.data.train, self.eval_batch_size))
        if self.diagnostics and self.method.buffer is not None:
            self.divergence_frames.append(epoch_divergences(self.method.buffer, epoch, self.data.train))
        self.check_divergence(row["train_loss"])
        self.rows.append(row)
        self.epoch += 1
        return row

    def check_divergence(self, loss: float) -> None:
        """Mark the run diverged if this epoch's mean training loss is not finite or above
        EXPLOSION · max(ln C, the first epoch's); warn once, naming the run."""
        start = max(math.log(self.data.num_classes), self.rows[0]["train_loss"] if self.rows else 0.0)
        if math.isfinite(loss) and loss <= EXPLOSION * start:
            return
        self.diverged_epoch = self.epoch + 1
        if self.replicas.rank == 0:
            why = "is not finite" if not math.isfinite(loss) else f"> {EXPLOSION} × {start:.3g}"
            warnings.warn(
                f"{self.name} diverged in epoch {self.diverged_epoch}: its mean training loss {loss:.3g} {why}; "
                f"stopped, its {self.diverged_epoch} epoch(s) kept in the history (a smaller lr may help)",
                DivergedWarning,
                stacklevel=4,
            )

    @torch.no_grad()
    def evaluate(self, split: TensorData | None) -> tuple[float, float]:
        """Mean CE and accuracy of the current model on `split` (in eval mode), against the labels
        the split holds; (nan, nan) for a split the data does not have."""
        if split is None:
            return math.nan, math.nan
        self.model.eval()
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device, dtype=torch.long)
        for x, y, _ in split.batches(self.eval_batch_size, shuffle=False):
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
                logits = self.model(x)
            loss_sum += nn.functional.cross_entropy(logits.float(), y, reduction="sum")
            correct += (logits.argmax(1) == y).sum()
        return loss_sum.item() / len(split), correct.item() / len(split)

    @torch.no_grad()
    def predict(self, split: TensorData) -> torch.Tensor:
        """Logits [N, C] of the current model for every sample of `split`, in order."""
        self.model.eval()
        return torch.cat([self.model(x).float() for x, _, _ in split.batches(self.eval_batch_size, shuffle=False)])

    # -- results ------------------------------------------------------------------------------------
    @property
    def history(self) -> pd.DataFrame:
        columns = ["epoch", "lr", "train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc", "seconds"]
        return pd.DataFrame(self.rows, columns=columns + (list(MEMORISATION) if self.diagnostics else []))

    @property
    def divergences(self) -> pd.DataFrame:
        """Per-sample, per-epoch divergences (only with `diagnostics=True`)."""
        return pd.concat(self.divergence_frames, ignore_index=True) if self.divergence_frames else pd.DataFrame()

    # -- checkpoints --------------------------------------------------------------------------------
    def describe(self) -> dict[str, str]:
        """What a checkpoint must agree on with the trainer that loads it (the seed is not here:
        a checkpoint brings its own random states)."""
        if self._fingerprint is None:
            self._fingerprint = data_fingerprint(self.data)
        parameters = sum(p.numel() for p in self.model.parameters())
        data = self.data
        return {
            "model": f"{type(self.model).__name__} with {parameters:,} parameters",
            "method": repr(self.method),
            "data": f"{len(data.train)} training samples, {data.num_classes} classes, inputs {tuple(data.input_shape)}",
            "data fingerprint": self._fingerprint,
            **{key: repr(value) for key, value in self.settings.items()},
        }

    def state_dict(self) -> dict:
        return {
            "about": self.describe(),
            "epoch": self.epoch,
            "diverged_epoch": self.diverged_epoch,
            "rows": self.rows,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "method": self.method.state_dict(),
            "generator": self.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "numpy_rng": np.random.get_state(),
            "python_rng": random.getstate(),
        }

    def load_state_dict(self, state: dict) -> None:
        """Continue from `state`; refused (ConfigError) if it describes another run."""
        theirs, ours = state.get("about"), self.describe()
        if theirs is not None:
            differ = [key for key in ours if theirs.get(key, ours[key]) != ours[key]]
            differences = [f"{key} is {theirs[key]} there, {ours[key]} here" for key in differ]
            if differences:
                raise ConfigError(f"the checkpoint is from another run: {'; '.join(differences)}")
        self.epoch, self.rows = state["epoch"], list(state["rows"])
        self.diverged_epoch = state.get("diverged_epoch")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.method.load_state_dict(state["method"])
        self.generator.set_state(state["generator"].cpu())
        torch.set_rng_state(state["torch_rng"].cpu())
        np.random.set_state(state["numpy_rng"])
        random.setstate(state["python_rng"])

    def save_checkpoint(self, path: str | Path) -> None:
        """Write `state_dict()` to `path`, atomically: an interruption leaves the previous one."""
        state = self.state_dict()
        atomic_write(Path(path), lambda file: torch.save(state, file))

    def load_checkpoint(self, path: str | Path) -> None:
        """Continue from the checkpoint at `path`; a ConfigError if it cannot be read or is from
        another run (another model, method, data or optimiser setting: the message says which)."""
        try:
            state = torch.load(path, map_location=self.device, weights_only=False)
        except READ_ERRORS as error:
            raise ConfigError(f"checkpoint {path} cannot be read ({type(error).__name__}); delete it") from None
        try:
            self.load_state_dict(state)
        except ConfigError as error:
            raise ConfigError(f"{path}: {error}") from None


@torch.no_grad()
def check_outputs(model: nn.Module, data: Dataset) -> None:
    """Run two training samples through `model` (in eval mode: nothing it holds changes) and
    check that it takes the data's inputs and gives one score per class; else a ConfigError."""
    x, _, _ = next(data.train.batches(2, shuffle=False))
    training = model.training
    model.eval()
    try:
        logits = model(x)
    except RuntimeError as error:
        first = str(error).strip().splitlines()[0][:160]
        raise ConfigError(
            f"model {type(model).__name__} cannot take this data's inputs, shaped {tuple(data.input_shape)}: {first}"
        ) from None
    finally:
        model.train(training)
    if tuple(logits.shape) != (len(x), data.num_classes):
        raise ConfigError(
            f"model must give {data.num_classes} class scores per sample for this data; "
            f"{type(model).__name__} gives outputs shaped {tuple(logits.shape[1:])}"
        )
