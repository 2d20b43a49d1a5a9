"""Looking inside LSTSD: each sample's divergence from its teachers, epoch by epoch.

At the end of epoch e the buffer already holds, for every sample i, the student's record from
this epoch z_i^(e) and the teachers' records. Reading them costs no forward pass:

    kl_long   = KL(p_long,i  ‖ p_student,i)     how far the student drifted from its old self
    kl_short  = KL(p_short,i ‖ p_student,i)     how much it changed since the last epoch
    nll_long  = −log p_long,i(y_i)              how little the long-term teacher believes the label

(all at τ = 1). On noisy data the interesting question is whether these numbers single out the
samples whose label was flipped; `mislabel_auc` answers it with the ROC AUC per epoch
(1.0 = every flipped sample scores above every clean one, 0.5 = chance).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from .buffer import SnapshotBuffer
from .data import TensorData
from .losses import per_sample_kl

SCORES = ("kl_long", "kl_short", "nll_long")


@torch.no_grad()
def epoch_divergences(buffer: SnapshotBuffer, epoch: int, train: TensorData) -> pd.DataFrame:
    """One row per training sample for `epoch` (0-based; reported 1-based like the history).

    Columns: epoch, index, label (given), clean_label, flipped, kl_long, kl_short, nll_long,
    student_agrees (student's argmax is the given label), long_agrees (same for the long-term
    teacher). Divergences are NaN where the sample has no such teacher yet.
    """
    index = torch.arange(len(train), device=buffer.values.device)
    student, seen = buffer.logits([epoch], index)  # [1, N, C], [1, N]
    student, seen = student[0], seen[0]
    teachers = buffer.teachers(epoch, index)
    long_valid, short_valid = teachers.valid & seen  # [N] each
    nan = torch.tensor(float("nan"), device=student.device)
    kl_long = torch.where(long_valid, per_sample_kl(teachers.long, student), nan)
    kl_short = torch.where(short_valid, per_sample_kl(teachers.short, student), nan)
    label = train.y.to(student.device)
    p_label = teachers.long.gather(1, label[:, None]).squeeze(1)  # [N]
    nll_long = torch.where(teachers.valid[0], -torch.log(p_label.clamp_min(1e-12)), nan)
    return pd.DataFrame({
        "epoch": epoch + 1,
        "index": index.cpu().numpy(),
        "label": label.cpu().numpy(),
        "clean_label": train.clean_y.cpu().numpy(),
        "flipped": train.flipped.cpu().numpy(),
        "kl_long": kl_long.cpu().numpy(),
        "kl_short": kl_short.cpu().numpy(),
        "nll_long": nll_long.cpu().numpy(),
        "student_agrees": ((student.argmax(1) == label) & seen).cpu().numpy(),
        "long_agrees": ((teachers.long.argmax(1) == label) & teachers.valid[0]).cpu().numpy(),
    })


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
    """ROC AUC of each score for detecting flipped labels, per epoch: columns epoch, score, auc."""
    rows = []
    for epoch, frame in divergences.groupby("epoch"):
        for score in scores:
            valid = frame[score].notna()
            if valid.any():
                rows.append({"epoch": epoch, "score": score,
                             "auc": roc_auc(frame.loc[valid, score], frame.loc[valid, "flipped"])})
    return pd.DataFrame(rows, columns=["epoch", "score", "auc"])
