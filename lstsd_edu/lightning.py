"""LSTSD in a PyTorch Lightning run: a callback that gives the LightningModule its loss.

    class Classifier(L.LightningModule):
        ...
        def training_step(self, batch, batch_idx):
            x, y, index = batch                            # WithIndex + collate_with_index
            return self.lstsd(self(x), y, index)           # the LSTSDLoss the callback attached

    trainer = L.Trainer(max_epochs=60, callbacks=[LSTSDCallback(len(train_set), num_classes=10)])

The callback holds one `dropin.LSTSDLoss` — the loss of a plain loop, and through it the method the
library's `Trainer` trains with — and plays the part of the loop around it:

    setup (fit)           builds the loss on the trainer's device and attaches it as `pl_module.lstsd`
    on_train_epoch_end    `lstsd.end_epoch()`: the epoch's records become teachers
    state_dict /          the loss's state, in Lightning's checkpoints (resume with `ckpt_path=`)
      load_state_dict

LSTSD's epochs are Lightning's: `on_train_epoch_start` checks that they agree. A checkpoint saved
after an epoch's last step but before its end (validation runs there) resumes at the next epoch;
the records of the saved epoch are all in it, and the callback closes that epoch first. Under a
DDP strategy each rank's loss shares its records with the others when an epoch ends, as in the
library's own DDP runs, so every rank holds every sample's records.

Lightning is imported here only, so the rest of the package never needs it
(`pip install 'lstsd-edu[lightning]'`).
"""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl

from .config import build_method
from .dropin import LSTSD_SETTINGS, LSTSDLoss
from .errors import ConfigError


class LSTSDCallback(pl.Callback):
    """Attaches an `LSTSDLoss` for `num_samples` training samples of `num_classes` classes to the
    LightningModule (as `lstsd`) and ends its epochs. `settings`: `LSTSDLoss`'s (lag, w_long,
    w_short, temperature, ramp, long_mode, storage, k), checked now against `Config`'s rules; the
    device is the Trainer's."""

    def __init__(self, num_samples: int, num_classes: int, **settings: Any) -> None:
        unknown = sorted(set(settings) - set(LSTSD_SETTINGS))
        if unknown:
            raise ConfigError(
                f"LSTSDCallback's settings must be LSTSD's ({', '.join(LSTSD_SETTINGS)}; the device and the "
                f"epochs are the Lightning Trainer's); got {', '.join(unknown)}"
            )
        build_method("lstsd", **settings)  # a bad setting fails here, not when fit starts
        self.num_samples, self.num_classes, self.settings = num_samples, num_classes, settings
        self.lstsd: LSTSDLoss | None = None
        self.restored: dict | None = None  # a checkpoint's state that came before the loss

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit":  # validating, testing, predicting: nothing is recorded
            return
        if self.lstsd is None:  # a second fit goes on with the same records
            device = trainer.strategy.root_device
            self.lstsd = LSTSDLoss(self.num_samples, self.num_classes, device=device, **self.settings)
        if self.restored is not None:
            self.lstsd.load_state_dict(self.restored)
            self.restored = None
        pl_module.lstsd = self.lstsd

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        behind = trainer.current_epoch - self.lstsd.epoch
        if behind == 1:  # resumed from a checkpoint saved after the last step, before the epoch's end
            self.lstsd.end_epoch()
        elif behind != 0:
            raise ConfigError(
                f"LSTSD's epoch must be Lightning's; got {self.lstsd.epoch} and {trainer.current_epoch}: "
                "restore both from the same checkpoint"
            )

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.lstsd.end_epoch()

    def state_dict(self) -> dict[str, Any]:
        return self.lstsd.state_dict() if self.lstsd is not None else {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if self.lstsd is None:
            self.restored = state_dict  # loaded when fit sets the loss up
        else:
            self.lstsd.load_state_dict(state_dict)
