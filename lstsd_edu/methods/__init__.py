"""Training methods: each one turns a batch's logits into a loss, behind one interface (`base.py`).

    method = build_method("lstsd", config)           # or build_method("lstsd", lag=5, w_long=0.3)
    trainer = Trainer(model, method, data, epochs=60)

One file per method, one registry, `METHODS`, built from the classes' own `name`:

    ce, ls            base.py          cross-entropy; label smoothing
    short, long,      lstsd.py         long short-term sample distillation and its two ablations
      lstsd
    snapshot          snapshot.py      Snapshot Distillation (a frozen model from the previous LR cycle)
    born_again        born_again.py    Born-Again Networks (a whole first training run teaches)
    pskd              pskd.py          progressive self-knowledge distillation
    te                te.py            Temporal Ensembling (per-sample moving average of predictions)
    gce               gce.py           generalized cross-entropy (a noise-robust loss between CE and MAE)
    elr               elr.py           early-learning regularization (held to a per-sample moving-average target)

Each method reads its own settings from a `Config` (`from_config`); `build_method` validates the
Config first, so every setting is checked once, in `Config.validate`.
"""

from __future__ import annotations

from dataclasses import replace

from ..config import Config
from ..errors import Choice
from .base import Batch, CrossEntropy, LabelSmoothing, Method, cosine_schedule
from .born_again import BornAgain
from .elr import EarlyLearningRegularization
from .gce import GeneralizedCrossEntropy
from .lstsd import LSTSD, LongTerm, SampleDistillation, ShortTerm
from .pskd import ProgressiveSelfKD
from .snapshot import SnapshotDistillation
from .te import TemporalEnsembling

METHODS: dict[str, type[Method]] = {
    cls.name: cls
    for cls in (
        CrossEntropy,
        LabelSmoothing,
        ShortTerm,
        LongTerm,
        LSTSD,
        SnapshotDistillation,
        BornAgain,
        ProgressiveSelfKD,
        TemporalEnsembling,
        GeneralizedCrossEntropy,
        EarlyLearningRegularization,
    )
}
METHOD = Choice(tuple(METHODS))


def build_method(name: str, config: Config | None = None, **overrides) -> Method:
    """The method `name` with its settings from `config` (default `Config()`) and `overrides`
    (Config fields), validated."""
    METHOD.check("method", name)
    config = replace(config if config is not None else Config(), **overrides).validate()
    return METHODS[name].from_config(config)


__all__ = [
    "LSTSD",
    "METHOD",
    "METHODS",
    "Batch",
    "BornAgain",
    "CrossEntropy",
    "EarlyLearningRegularization",
    "GeneralizedCrossEntropy",
    "LabelSmoothing",
    "LongTerm",
    "Method",
    "ProgressiveSelfKD",
    "SampleDistillation",
    "ShortTerm",
    "SnapshotDistillation",
    "TemporalEnsembling",
    "build_method",
    "cosine_schedule",
]
