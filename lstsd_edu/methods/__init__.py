"""Training methods: each one turns a batch's logits into a loss, behind one interface (`base.py`).

    method = METHODS["lstsd"].from_config(config)    # config.build_method("lstsd", config) validates first
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

Each method declares its own settings (`settings`, which `config.Config` makes fields) and reads
them from a Config (`from_config`); `config.build_method` validates the Config first, so every
setting is checked once, in `Config.validate`. Nothing here depends on `config`: it is `Config`
that is built from this registry.
"""

from __future__ import annotations

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
    "cosine_schedule",
]
