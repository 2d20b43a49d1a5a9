"""`Config`: every setting of a training run, in one place; `build_method`: the method it describes.

    config = Config(dataset="mnist1d", noise=0.3, lag=20).validate()
    config = preset("mnist1d", noise=0.3)            # experiments.py: a dataset's defaults + overrides
    method = build_method("lstsd", config)           # or build_method("lstsd", lag=5, w_long=0.3)

Each field carries its help text and, where it has limits, the rule that states them
(`errors.Range`, `errors.Choice`), imported from the module that owns the limit: the buffer's
lag and modes, the registries' dataset and model names, the devices. `Config.validate` checks
every field against its rule, once, plus the one rule that spans two fields
(`w_long + w_short ≤ 1`). The command line is generated from the same fields (`cli.py`), so
`lstsd-edu compare` and `lstsd-edu train` take exactly these settings.

The fields come from two places. `RunSettings` below holds what every run has: the data, the
model and optimiser, the device, and LSTSD's settings (the method this toolkit teaches; the
buffer's memory arithmetic, the teachers' milestones in every figure and the playground read them
too). Every other method declares its own knobs beside its loss (`Method.settings`, e.g. label
smoothing's ε in methods/base.py), and `Config` adds them after those, in the registry's order,
as fields of the same kind. So adding a method touches its own file and the registry only, and a
method reads its settings from a Config (`Method.from_config`), so the peers' knobs can be set
and tuned like LSTSD's.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields, make_dataclass, replace
from typing import Any

from .buffer import LAG, MODES, STORAGES
from .data import DATASETS, NOISE_KINDS
from .device import DEVICE
from .errors import PROBABILITY, TEMPERATURE, Choice, ConfigError, Range, Setting
from .methods import METHOD, METHODS, Method
from .models import MODELS

EPOCHS = Range(1, 100_000, integer=True)


def setting(default: Any, help: str, rule=None, *, group: str, flags: tuple[str, ...] = ()) -> Any:
    """A Config field with its help text, its rule (checked by `validate`) and its flag group."""
    return field(default=default, metadata={"help": help, "rule": rule, "group": group, "flags": flags})


@dataclass(frozen=True)
class RunSettings:
    """The settings every run has; `Config` adds each method's own (see the module docstring)."""

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


def _method_fields() -> list[tuple[str, str, Any]]:
    """Each registered method's own settings (`Method.settings`) as fields, in the registry's
    order; a setting a subclass inherits counts once, under the class that declares it first."""
    declared: dict[str, tuple[type[Method], Setting]] = {}
    for cls in METHODS.values():
        for name, spec in cls.settings.items():
            if declared.setdefault(name, (cls, spec))[1] is not spec or name in RunSettings.__dataclass_fields__:
                raise TypeError(f"{cls.__name__} declares the setting {name!r}, which another method or the run has")
    return [
        (
            name,
            type(spec.default).__name__,
            setting(spec.default, f"{cls.name}: {spec.help}", spec.rule, group=cls.name),
        )
        for name, (cls, spec) in declared.items()
    ]


Config = make_dataclass(
    "Config",
    _method_fields(),
    bases=(RunSettings,),
    frozen=True,
    namespace={
        "__module__": __name__,
        "__doc__": """Everything one training run needs besides the method name and the seed: the fields of
    `RunSettings`, then every method's own settings (`Method.settings`).""",
    },
)


def build_method(name: str, config: Config | None = None, **overrides) -> Method:
    """The method `name` with its settings from `config` (default `Config()`) and `overrides`
    (Config fields), validated."""
    METHOD.check("method", name)
    config = replace(config if config is not None else Config(), **overrides).validate()
    return METHODS[name].from_config(config)


def check_setting(name: str, value: Any) -> None:
    """Check one value against the rule of the Config field `name` (for classes that take a setting
    directly, such as the Trainer)."""
    rule = Config.__dataclass_fields__[name].metadata["rule"]
    if rule is not None:
        rule.check(name, value)


def settings() -> list:
    """The Config fields, in order: what the command line turns into flags."""
    return [f for f in fields(Config) if f.default is not MISSING]
