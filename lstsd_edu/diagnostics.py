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

`teacher_schedule` is the bookkeeping side: which epoch's record sits in which ring slot, and
which slots the teachers are read from, computed by a real (one-sample) `SnapshotBuffer`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from .buffer import SnapshotBuffer
from .data import TensorData
from .losses import per_sample_kl

SCORES = ("kl_long", "kl_short", "nll_long", "nll_short", "margin")


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
    # max_{c≠y} log q_c − log q_y: mask the given class out with −inf before the max
    own = student.gather(1, label[:, None]).squeeze(1)  # [N]
    others = student.scatter(1, label[:, None], float("-inf")).max(1).values  # [N]
    margin = torch.where(seen, others - own, nan)
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


def best_auc(auc: pd.DataFrame) -> pd.DataFrame:
    """Per score: the best epoch, its AUC and the last epoch's AUC; best detector first.

    `auc` is `mislabel_auc`'s frame. Columns: score, best_epoch, best_auc, final_auc.
    """
    auc = auc.dropna(subset=["auc"])
    if auc.empty:
        return pd.DataFrame(columns=["score", "best_epoch", "best_auc", "final_auc"])
    best = auc.loc[auc.groupby("score").auc.idxmax()].set_index("score")
    final = auc.sort_values("epoch").groupby("score").auc.last()
    out = pd.DataFrame({"best_epoch": best.epoch, "best_auc": best.auc, "final_auc": final})
    return out.sort_values("best_auc", ascending=False).reset_index()


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
