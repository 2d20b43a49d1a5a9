"""Looking inside LSTSD: each sample's divergence from its teachers, epoch by epoch.

At the end of epoch e the buffer already holds, for every sample i, the student's record from
this epoch q_i = softmax(z_i^(e) / τ) and the teachers' records. Reading them costs no forward pass:

    kl_long   = KL(p_long,i  ‖ q_i)            how far the student drifted from its old self
    kl_short  = KL(p_short,i ‖ q_i)            how much it changed since the last epoch
    nll_long  = −log p_long,i(y_i)             how little the long-term teacher believes the label
    nll_short = −log p_short,i(y_i)            the same for the short-term teacher
    margin    = max_{c≠y_i} log q_i,c − log q_i,y_i
                                               how much the student prefers another class to
                                               the given one (> 0: it predicts another class)

`nll_·` is a divergence too: KL(onehot(y_i) ‖ p) = −log p(y_i), the distance from the *given
label* to the teacher. `margin` is the negative of the margin whose average over training Pleiss
et al. (2020, "area under the margin") use to rank mislabeled samples, taken here from the record
of one epoch.

On noisy data the interesting question is whether these numbers single out the samples whose
label was flipped; `mislabel_auc` answers it with the ROC AUC per epoch (1.0 = every flipped
sample scores above every clean one, 0.5 = chance).

As a mislabel detector to use, with everything fixed in advance: `margin_detector` (the record's
`margin`, flagged where > 0) next to confident learning, `cleanlab_detector`, which needs
out-of-sample probabilities (`experiments.cross_val_probs`: K models, each trained on K − 1
folds); `detection_quality` scores either against the flip mask (ROC AUC, precision, recall).

`teacher_schedule` is the bookkeeping side: which epoch's record sits in which ring slot, and
which slots the teachers are read from, computed by a real (one-sample) `SnapshotBuffer`;
`milestones` names the epochs a figure marks: the short-term teacher arrives, the ramp ends, the
long-term teacher arrives. `loss_weights` gives the loss's weights at every epoch of a run: the
ramp's, and those in effect for a sample once its teachers exist.

`memorisation` asks the same question of any method, CE included, without a buffer: does the
model predict a flipped training sample's given (wrong) label, or its true one? With
`Trainer(..., diagnostics=True)` its three shares join the history every epoch.

`seed_gain` turns per-seed differences (LSTSD − CE) into a mean, a spread and a 95 % interval, so
that a grid of settings can show which gains are ties at this many seeds.

The clean labels and the flip mask are used here for analysis only, never to choose anything.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from scipy import stats
from torch import nn

from .buffer import SnapshotBuffer
from .data import TensorData
from .errors import ConfigError
from .losses import per_sample_kl
from .methods.lstsd import SampleDistillation

SCORES = ("kl_long", "kl_short", "nll_long", "nll_short", "margin")
MEMORISATION = ("flipped_as_given", "flipped_as_true", "clean_correct")  # `memorisation`'s keys


@torch.no_grad()
def epoch_divergences(buffer: SnapshotBuffer, epoch: int, train: TensorData) -> pd.DataFrame:
    """One row per training sample for `epoch` (0-based; reported 1-based like the history).

    Columns: epoch, index, label (given), clean_label, flipped, kl_long, kl_short, nll_long,
    nll_short, margin, student_agrees (student's argmax is the given label), long_agrees and
    short_agrees (the same for the teachers). A score is NaN where the sample has no record of
    that kind yet; an agreement is False there.
    """
    index = torch.arange(len(train), device=buffer.values.device)
    student, seen = buffer.log_probs([epoch], index)  # [1, N, C] log softmax(z/τ), [1, N]
    student, seen = student[0], seen[0]  # [N, C], [N]
    teachers = buffer.teachers(epoch, index)
    long_valid, short_valid = teachers.valid & seen  # [N] each
    nan = torch.tensor(float("nan"), device=student.device)
    label = train.y.to(student.device)  # [N]
    # KL(p_teacher ‖ q): the record already is log q, and log_softmax(log q) = log q
    kl_long = torch.where(long_valid, per_sample_kl(teachers.long, student), nan)
    kl_short = torch.where(short_valid, per_sample_kl(teachers.short, student), nan)
    # −log p_teacher(y) for both teachers at once: [2, N]
    nll = -teachers.log_probs.gather(2, label[None, :, None].expand(2, -1, 1)).squeeze(2)
    nll = torch.where(teachers.valid, nll, nan)
    margin = torch.where(seen, label_margin(student, label), nan)
    agrees = teachers.log_probs.argmax(2) == label  # [2, N]
    return pd.DataFrame(
        {
            "epoch": epoch + 1,
            "index": index.cpu().numpy(),
            "label": label.cpu().numpy(),
            "clean_label": train.clean_y.cpu().numpy(),
            "flipped": train.flipped.cpu().numpy(),
            "kl_long": kl_long.cpu().numpy(),
            "kl_short": kl_short.cpu().numpy(),
            "nll_long": nll[0].cpu().numpy(),
            "nll_short": nll[1].cpu().numpy(),
            "margin": margin.cpu().numpy(),
            "student_agrees": ((student.argmax(1) == label) & seen).cpu().numpy(),
            "long_agrees": (agrees[0] & teachers.valid[0]).cpu().numpy(),
            "short_agrees": (agrees[1] & teachers.valid[1]).cpu().numpy(),
        }
    )


def label_margin(log_probs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """max_{c≠y_i} log p_i,c − log p_i,y_i for each row: log-probabilities [N, C], labels [N] -> [N].

    > 0 exactly when some other class is more probable than the given one. A temperature τ divides
    every log-probability difference by τ, so the sign (and the ranking of samples) does not
    depend on it: records taken at τ and predictions at τ = 1 flag the same samples.
    """
    own = log_probs.gather(1, labels[:, None]).squeeze(1)  # [N]
    # mask the given class out with −inf before the max
    others = log_probs.scatter(1, labels[:, None], float("-inf")).max(1).values  # [N]
    return others - own


# ---------------------------------------------------------------------------------------------
# Mislabel detection
# ---------------------------------------------------------------------------------------------
def roc_auc(scores, positive) -> float:
    """Probability that a random positive scores above a random negative (ties count half)."""
    ranks = pd.Series(np.asarray(scores, dtype=float)).rank().to_numpy()  # average ranks for ties
    positive = np.asarray(positive, dtype=bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    # Mann–Whitney U: the positives' rank sum minus its smallest possible value, over all pairs
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def mislabel_auc(divergences: pd.DataFrame, scores: tuple[str, ...] = SCORES) -> pd.DataFrame:
    """ROC AUC of each score for detecting flipped labels, per epoch: columns epoch, score, auc.

    Only samples where the score exists (not NaN) take part; an epoch where a score exists for
    no sample has no row for it.
    """
    rows = []
    for epoch, frame in divergences.groupby("epoch"):
        for score in scores:
            valid = frame[score].notna()
            if valid.any():
                rows.append(
                    {
                        "epoch": epoch,
                        "score": score,
                        "auc": roc_auc(frame.loc[valid, score], frame.loc[valid, "flipped"]),
                    }
                )
    return pd.DataFrame(rows, columns=["epoch", "score", "auc"])


# ---------------------------------------------------------------------------------------------
# Mislabel detectors side by side: LSTSD's records and confident learning
# ---------------------------------------------------------------------------------------------
def margin_detector(margin) -> tuple[np.ndarray, np.ndarray]:
    """LSTSD's mislabel detector, fixed before any label's truth is looked at: (score, flagged).

    Score: the student's `margin` from its record of one epoch, max_{c≠y} log q_c − log q_y
    (higher: more likely mislabeled). Why this score and not another of `SCORES`:

    * it measures *disagreement with the given label*, the trace a flipped label leaves; the KL
      scores measure *change*, and a student that does not memorise the flipped labels changes
      about as much on them as on clean ones;
    * it exists for every sample from the first epoch on (`nll_long` waits L epochs for its
      teacher) and is read from the record alone, at no cost;
    * it is the student's own view at that epoch, the same quantity a plain run's prediction
      gives (`label_margin`), so a CE run can be read the same way; and it is, up to sign, the
      margin Pleiss et al. (2020) rank mislabeled samples by.

    Flagged set: margin > 0, i.e. the student predicts another class than the given one: a rule
    that needs no clean label, no noise rate and nothing tuned. A sample without a record (NaN)
    is never flagged. Which epoch's record to read is the caller's, chosen on the noisy
    validation split (the run's `selected_epoch`) or fixed in advance (the last epoch).
    """
    score = np.asarray(margin, dtype=float)  # [N]
    return score, score > 0  # NaN > 0 is False


def cleanlab_detector(labels, pred_probs) -> tuple[np.ndarray, np.ndarray]:
    """Confident learning (the `cleanlab` package) as its documentation prescribes: (score, flagged).

    `pred_probs` [N, C] must be out-of-sample, each row predicted by a model that never trained
    on that sample (K-fold cross-validation: `experiments.cross_val_probs`); `labels` [N] are the
    given (noisy) labels. With cleanlab's defaults:

        score    1 − cleanlab.rank.get_label_quality_scores(labels, pred_probs)
                 (self-confidence: 1 − p(given label); higher: more likely mislabeled)
        flagged  cleanlab.filter.find_label_issues(labels, pred_probs)
                 (prune by noise rate: the confident joint's off-diagonal counts, per class)

    (`n_jobs=1` keeps it on one core; it does not change the result.) cleanlab is an optional
    dependency (`pip install "lstsd-edu[mislabel]"`), imported only here.
    """
    try:
        from cleanlab.filter import find_label_issues
        from cleanlab.rank import get_label_quality_scores
    except ImportError as error:
        raise ImportError('cleanlab_detector needs the cleanlab package: pip install "lstsd-edu[mislabel]"') from error
    labels = np.asarray(labels)  # [N]
    pred_probs = np.asarray(pred_probs, dtype=float)  # [N, C]
    quality = get_label_quality_scores(labels, pred_probs)  # [N], in [0, 1]
    flagged = find_label_issues(labels, pred_probs, n_jobs=1)  # [N] bool
    return 1.0 - quality, flagged


def detection_quality(score, flagged, flipped) -> dict:
    """How well a detector finds the flipped labels: the one place the flip mask is read.

    auc        `roc_auc(score, flipped)` over the samples with a score (no threshold)
    precision  flagged and flipped / flagged   (NaN when nothing is flagged)
    recall     flagged and flipped / flipped   (NaN when nothing is flipped)
    flagged    the size of the flagged set
    flipped    how many labels were flipped
    """
    score = np.asarray(score, dtype=float)
    flagged = np.asarray(flagged, dtype=bool)
    flipped = np.asarray(flipped, dtype=bool)
    valid = ~np.isnan(score)
    hits = int((flagged & flipped).sum())
    n_flagged, n_flipped = int(flagged.sum()), int(flipped.sum())
    return dict(
        auc=roc_auc(score[valid], flipped[valid]),
        precision=hits / n_flagged if n_flagged else float("nan"),
        recall=hits / n_flipped if n_flipped else float("nan"),
        flagged=n_flagged,
        flipped=n_flipped,
    )


# ---------------------------------------------------------------------------------------------
# Which record teaches when
# ---------------------------------------------------------------------------------------------
def teacher_schedule(lag: int, mode: str = "sliding", epochs: int = 12) -> pd.DataFrame:
    """The ring of a real `SnapshotBuffer` over `epochs` epochs, one row per (epoch, slot).

    Epochs are 1-based like the history. Columns:
        epoch    the training epoch
        slot     the ring slot
        holds    the epoch whose record the slot holds when `epoch` starts (<NA>: empty)
        long     the long-term teachers of `epoch` are read from this slot
        short    the short-term teachers of `epoch` are read from this slot
        written  `epoch`'s own records are written to this slot (after being read, per sample)
    """
    buffer = SnapshotBuffer(1, 2, lag, mode)
    index = torch.zeros(1, dtype=torch.long)
    rows = []
    for e in range(epochs):  # 0-based inside the buffer
        teachers = buffer.teachers(e, index)
        long_slot = buffer.slot(buffer.long_epoch(e)) if teachers.valid[0, 0] else None
        short_slot = buffer.slot(buffer.short_epoch(e)) if teachers.valid[1, 0] else None
        for slot in range(buffer.slots):
            stamp = int(buffer.stamp[slot, 0])
            rows.append(
                {
                    "epoch": e + 1,
                    "slot": slot,
                    "holds": stamp + 1 if stamp >= 0 else pd.NA,
                    "long": slot == long_slot,
                    "short": slot == short_slot,
                    "written": slot == buffer.slot(e),
                }
            )
        buffer.record(e, index, torch.zeros(1, 2))
    frame = pd.DataFrame(rows)
    frame["holds"] = frame["holds"].astype("Int64")
    return frame


def milestones(config) -> dict[str, int]:
    """The 1-based history epochs a figure of LSTSD training marks, for `config`'s lag, long_mode,
    ramp and epochs:

        short   the short-term teacher arrives (the first epoch with a record of the one before: 2)
        ramp    the ramp ends: the first epoch at full weight, w(e) = w · min(1, (e + 1) / ramp)
                with e counted from 0, i.e. epoch `ramp` (absent without a ramp)
        long    the long-term teacher arrives: sliding, epoch L + 1; phase, the first epoch of the
                second phase

    Each is found by asking the code that decides it (`SnapshotBuffer.short_epoch`,
    `SnapshotBuffer.long_epoch`, `SampleDistillation.weights`), not by restating its rule. A
    milestone that falls after the last epoch is left out.
    """
    buffer = SnapshotBuffer(1, 2, config.lag, config.long_mode)
    method = SampleDistillation(1.0, 0.0, config.lag, config.long_mode, ramp=config.ramp)
    epochs = range(config.epochs)  # 0-based, as the buffer and the method count
    found = {
        "short": next((e for e in epochs if buffer.short_epoch(e) >= 0), None),
        "ramp": next((e for e in epochs if method.weights(e)[0] >= 1.0), None) if config.ramp else None,
        "long": next((e for e in epochs if buffer.long_epoch(e) >= 0), None),
    }
    return {name: e + 1 for name, e in found.items() if e is not None}


def loss_weights(config) -> pd.DataFrame:
    """The LSTSD loss's weights at each epoch of a run with `config` (its w_long, w_short, lag,
    long_mode, ramp and epochs), for a sample seen in every epoch. One row per epoch, 1-based:

        w_long, w_short   the ramp's weights, w · min(1, (e + 1) / ramp) with e = epoch − 1
                          (`SampleDistillation.weights`)
        m_long, m_short   1 once the sample has that teacher (a record of the epoch the buffer
                          asks for: `SnapshotBuffer.long_epoch` / `short_epoch` ≥ 0), else 0
        w_ce              1 − w_long · m_long − w_short · m_short: a missing teacher's weight goes
                          to cross-entropy

    The weights in effect are w_long · m_long and w_short · m_short; like `milestones`, the rules
    are asked of the code that decides them, not restated.
    """
    method = SampleDistillation(config.w_long, config.w_short, config.lag, config.long_mode, ramp=config.ramp)
    buffer = SnapshotBuffer(1, 2, config.lag, config.long_mode)
    rows = []
    for e in range(config.epochs):  # 0-based, as the buffer and the method count
        w_long, w_short = method.weights(e)
        m_long, m_short = int(buffer.long_epoch(e) >= 0), int(buffer.short_epoch(e) >= 0)
        rows.append(
            dict(
                epoch=e + 1,
                w_long=w_long,
                w_short=w_short,
                m_long=m_long,
                m_short=m_short,
                w_ce=1 - w_long * m_long - w_short * m_short,
            )
        )
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------
# Memorisation, for any method
# ---------------------------------------------------------------------------------------------
@torch.no_grad()
def memorisation(model: nn.Module, train: TensorData, batch_size: int = 1024) -> dict[str, float]:
    """What `model` (in eval mode, no gradients) predicts for the training samples:

        flipped_as_given   share of the flipped samples predicted as their given (wrong) label:
                           how much of the noise the model has memorised
        flipped_as_true    share of the flipped samples predicted as their true label: the
                           model sees through the noise
        clean_correct      share of the clean samples predicted as their (correct) label

    The flip mask and the true labels are the analysis's, never the training's: nothing is chosen
    with them. A share with no sample to count is NaN. The model's train/eval mode is restored.
    """
    was_training = model.training
    model.eval()
    predicted = torch.cat([model(x).argmax(1) for x, _, _ in train.batches(batch_size, shuffle=False)])  # [N]
    model.train(was_training)
    flipped = train.flipped.to(predicted.device)  # [N] bool
    as_given = predicted == train.y.to(predicted.device)
    as_true = predicted == train.clean_y.to(predicted.device)

    def share(hits: torch.Tensor) -> float:
        return hits.float().mean().item() if hits.numel() else float("nan")

    return {
        "flipped_as_given": share(as_given[flipped]),
        "flipped_as_true": share(as_true[flipped]),
        "clean_correct": share(as_given[~flipped]),
    }


# ---------------------------------------------------------------------------------------------
# Gains over seeds
# ---------------------------------------------------------------------------------------------
def seed_gain(runs: pd.DataFrame, by: list[str], value: str = "gain", confidence: float = 0.95) -> pd.DataFrame:
    """Per group of `by` (e.g. one cell of a lag × weight grid): the mean over seeds of `value` (one
    row per seed, e.g. LSTSD − CE test accuracy of the same seed), its spread and its interval.

    Columns: the `by` columns, gain (the mean), spread (sample standard deviation over seeds),
    seeds, low and high (the `confidence` t-interval of the mean), ratio = gain ÷ spread, and tie
    (True where the interval holds 0: at this many seeds the sign of the gain is not known).
    With no spread at all (every seed the same) the interval is the gain itself.
    """
    rows = []
    for key, group in runs.groupby(list(by), sort=True):
        gains = group[value].to_numpy(dtype=float)
        n = len(gains)
        if n < 2:
            raise ConfigError(f"seeds must be at least 2 per cell to have a spread; got {n} for {dict(zip(by, key))}")
        gain, spread = gains.mean(), gains.std(ddof=1)
        if spread > 0:
            low, high = stats.t.interval(confidence, n - 1, loc=gain, scale=spread / np.sqrt(n))
        else:
            low = high = gain
        ratio = gain / spread if spread > 0 else (np.sign(gain) * np.inf if gain else 0.0)
        rows.append(
            {
                **dict(zip(by, key)),
                "gain": gain,
                "spread": spread,
                "seeds": n,
                "low": low,
                "high": high,
                "ratio": ratio,
                "tie": bool(low <= 0.0 <= high),
            }
        )
    return pd.DataFrame(rows)
