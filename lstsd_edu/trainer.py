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
  so 10 epochs straight and 5 + resume + 5 give identical histories on CPU.
* **Evaluation** after every epoch on the validation split (its labels carry the same noise as
  the training labels: what a user can select on) and on the test split; a split the data does
  not have gives NaN. The history holds both; choosing an epoch is done on `val_acc`
  (`experiments.Run.summary`), never on `test_acc`.
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
import random
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from .config import check_setting
from .data import Dataset, TensorData
from .device import DEVICES, get_device, seed_everything
from .diagnostics import MEMORISATION, memorisation
from .distributed import Replicas
from .errors import ConfigError
from .methods.base import Method

__all__ = ["DEVICES", "Trainer", "get_device", "seed_everything"]


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
    ) -> None:
        settings = dict(epochs=epochs, batch_size=batch_size, lr=lr, momentum=momentum, weight_decay=weight_decay)
        for name, value in settings.items():  # the limits of the Config fields of the same names
            check_setting(name, value)
        self.device = get_device(device)
        self.data = data.to(self.device)
        self.model = model.to(self.device)
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
        self.rows: list[dict] = []
        self.divergence_frames: list[pd.DataFrame] = []

    # -- the loop -----------------------------------------------------------------------------------
    def fit(self, until: int | None = None) -> pd.DataFrame:
        """Train up to epoch `until` (default: all `epochs`) and return the history so far."""
        until = self.epochs if until is None else until
        bar = tqdm(
            range(self.epoch, until), desc=self.method.name, unit="epoch", disable=not self.progress, leave=False
        )
        for _ in bar:
            row = self.train_epoch()
            bar.set_postfix(loss=f"{row['train_loss']:.3f}", val_acc=f"{row['val_acc']:.3f}")
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
            from .diagnostics import epoch_divergences

            self.divergence_frames.append(epoch_divergences(self.method.buffer, epoch, self.data.train))
        self.rows.append(row)
        self.epoch += 1
        return row

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
    def state_dict(self) -> dict:
        return {
            "epoch": self.epoch,
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
        self.epoch, self.rows = state["epoch"], list(state["rows"])
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.method.load_state_dict(state["method"])
        self.generator.set_state(state["generator"].cpu())
        torch.set_rng_state(state["torch_rng"].cpu())
        np.random.set_state(state["numpy_rng"])
        random.setstate(state["python_rng"])

    def save_checkpoint(self, path: str | Path) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        torch.save(self.state_dict(), path)

    def load_checkpoint(self, path: str | Path) -> None:
        self.load_state_dict(torch.load(path, map_location=self.device, weights_only=False))
