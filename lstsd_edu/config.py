"""`Config`: every setting of a training run, in one place.

    config = Config(dataset="mnist1d", noise=0.3, lag=20).validate()
    config = preset("mnist1d", noise=0.3)            # experiments.py: a dataset's defaults + overrides

Each field carries its help text and, where it has limits, the rule that states them
(`errors.Range`, `errors.Choice`), imported from the module that owns the limit: the buffer's
lag and modes, the registries' dataset and model names, the devices. `Config.validate` checks
every field against its rule, once, plus the one rule that spans two fields
(`w_long + w_short ≤ 1`). The command line is generated from the same fields (`cli.py`), so
`lstsd-edu compare` and `lstsd-edu train` take exactly these settings, and a method reads its
own settings from a Config (`Method.from_config`), so the peers' knobs can be set and tuned like
LSTSD's.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
from typing import Any

from .buffer import LAG, MODES, STORAGES
from .data import DATASETS, NOISE_KINDS
from .device import DEVICE
from .errors import Choice, ConfigError, Range
from .models import MODELS

PROBABILITY = Range(0.0, 1.0)
POSITIVE = Range(0.0, 1e6, low_inclusive=False)
TEMPERATURE = Range(0.0, 100.0, low_inclusive=False)
EPOCHS = Range(1, 100_000, integer=True)


def setting(default: Any, help: str, rule=None, *, group: str, flags: tuple[str, ...] = ()) -> Any:
    """A Config field with its help text, its rule (checked by `validate`) and its flag group."""
    return field(default=default, metadata={"help": help, "rule": rule, "group": group, "flags": flags})


@dataclass(frozen=True)
class Config:
    """Everything one training run needs besides the method name and the seed."""

    # -- data -------------------------------------------------------------------------------------
    dataset: str = setting("mnist1d", "dataset name", Choice(tuple(DATASETS)), group="data")
    noise: float = setting(
        0.0, "fraction of training labels flipped", Range(0.0, 1.0, high_inclusive=False), group="data"
    )
    noise_kind: str = setting("symmetric", "label noise: symmetric or pairflip", Choice(NOISE_KINDS), group="data")
    val_fraction: float = setting(
        0.1,
        "fraction of the training set held out for validation (stratified, same label noise; 0: none)",
        Range(0.0, 0.5),
        group="data",
    )
    # -- model and optimiser ----------------------------------------------------------------------
    model: str = setting("cnn1d", "model name", Choice(tuple(MODELS)), group="model")
    width: int | None = setting(
        None,
        "channels of a CNN, hidden units of the MLP (default: the model's own)",
        Range(1, 1 << 16, integer=True),
        group="model",
    )
    epochs: int = setting(60, "training epochs", EPOCHS, group="optimiser")
    batch_size: int = setting(
        128, "batch size (under torchrun: the global batch)", Range(1, 1 << 20, integer=True), group="optimiser"
    )
    lr: float = setting(
        0.1,
        "peak learning rate of the cosine schedule (SGD, Nesterov)",
        Range(0.0, 10.0, low_inclusive=False),
        group="optimiser",
    )
    momentum: float = setting(0.9, "SGD momentum", Range(0.0, 1.0, high_inclusive=False), group="optimiser")
    weight_decay: float = setting(5e-4, "SGD weight decay", Range(0.0, 1.0), group="optimiser")
    # -- LSTSD (also `short` and `long`) ----------------------------------------------------------
    lag: int = setting(10, "long-term lag L in epochs (sliding) or phase length (phase)", LAG, group="lstsd")
    long_mode: str = setting(
        "sliding", "long-term teacher: sliding (epoch e − L) or phase", Choice(MODES), group="lstsd"
    )
    w_long: float = setting(
        0.4, "weight of the long-term teacher", PROBABILITY, group="lstsd", flags=("--long-weight",)
    )
    w_short: float = setting(
        0.4,
        "weight of the short-term teacher (w_long + w_short ≤ 1)",
        PROBABILITY,
        group="lstsd",
        flags=("--short-weight",),
    )
    temperature: float = setting(1.0, "temperature τ of the records and the KL terms", TEMPERATURE, group="lstsd")
    ramp: int = setting(
        0,
        "epochs over which both weights grow linearly from 0 (0: none)",
        Range(0, 100_000, integer=True),
        group="lstsd",
    )
    storage: str = setting(
        "dense", "records: dense (all C classes) or topk (the k largest)", Choice(STORAGES), group="lstsd"
    )
    k: int = setting(5, "classes a topk record keeps", Range(1, 1_000_000, integer=True), group="lstsd")
    # -- the other methods' own knobs ---------------------------------------------------------------
    label_smoothing: float = setting(0.1, "ls: smoothing ε", Range(0.0, 1.0, high_inclusive=False), group="ls")
    snapshot_cycles: int = setting(
        4, "snapshot: cyclic-LR cycles over the run", Range(1, 1000, integer=True), group="snapshot"
    )
    snapshot_temperature: float = setting(3.0, "snapshot: temperature T of the teacher", TEMPERATURE, group="snapshot")
    snapshot_teacher_weight: float = setting(
        1.0, "snapshot: weight λ_t of the KL term (λ_s = 1 + 1/T)", Range(0.0, 100.0), group="snapshot"
    )
    born_again_weight: float = setting(
        0.5, "born_again: weight w of the KL term (1 − w on CE)", PROBABILITY, group="born_again"
    )
    born_again_temperature: float = setting(1.0, "born_again: temperature τ", TEMPERATURE, group="born_again")
    pskd_alpha: float = setting(0.8, "pskd: final weight α_T of the previous prediction", PROBABILITY, group="pskd")
    te_decay: float = setting(
        0.6, "te: decay α of the moving average", Range(0.0, 1.0, high_inclusive=False), group="te"
    )
    te_max_weight: float = setting(30.0, "te: final weight of the consistency term", Range(0.0, 1e6), group="te")
    te_rampup: float = setting(80 / 300, "te: ramp-up length as a fraction of the epochs", PROBABILITY, group="te")
    gce_q: float = setting(
        0.7,
        "gce: exponent q of the loss (1 − p_y^q) / q (q → 0: CE; q = 1: 1 − p_y, half the MAE)",
        Range(0.0, 1.0, low_inclusive=False),
        group="gce",
    )
    elr_lambda: float = setting(3.0, "elr: weight λ of the term log(1 − ⟨p, t⟩)", Range(0.0, 1e6), group="elr")
    elr_beta: float = setting(
        0.7, "elr: momentum β of each sample's target t", Range(0.0, 1.0, high_inclusive=False), group="elr"
    )
    # -- where it runs ----------------------------------------------------------------------------
    device: str = setting("auto", "auto (cuda → mps → cpu), cpu, cuda or mps", DEVICE, group="run")

    def validate(self) -> Config:
        """Check every field against its rule; returns self, so `Config(...).validate()` chains."""
        for f in fields(self):
            value, rule = getattr(self, f.name), f.metadata["rule"]
            if rule is not None and not (value is None and f.default is None):
                rule.check(f.name, value)
        if self.w_long + self.w_short > 1.0 + 1e-9:
            total = self.w_long + self.w_short
            raise ConfigError(f"w_long + w_short must be at most 1; got {self.w_long} + {self.w_short} = {total:g}")
        return self


def check_setting(name: str, value: Any) -> None:
    """Check one value against the rule of the Config field `name` (for classes that take a setting
    directly, such as the Trainer)."""
    rule = Config.__dataclass_fields__[name].metadata["rule"]
    if rule is not None:
        rule.check(name, value)


def settings() -> list:
    """The Config fields, in order: what the command line turns into flags."""
    return [f for f in fields(Config) if f.default is not MISSING]
