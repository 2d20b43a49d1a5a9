"""Figures under the Agg backend on small frames, and the diagnostics frames they draw.

The diagnostics checks compare `epoch_divergences` with the formulas written out by hand on a
buffer whose records we chose, and `teacher_schedule` with the rules of the buffer docstring.
"""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch

from lstsd_edu import plots
from lstsd_edu.buffer import SnapshotBuffer
from lstsd_edu.data import TensorData
from lstsd_edu.diagnostics import (
    SCORES,
    best_auc,
    epoch_divergences,
    mislabel_auc,
    roc_auc,
    teacher_schedule,
)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def history_frame(methods=("ce", "lstsd"), seeds=(0, 1), epochs=5) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = [
        dict(method=m, seed=s, epoch=e, test_acc=rng.uniform(0.3, 0.9), train_acc=rng.uniform(0.3, 0.9))
        for m in methods
        for s in seeds
        for e in range(1, epochs + 1)
    ]
    return pd.DataFrame(rows)


def divergence_frame(samples=40, epochs=6, lag=2, seed=0) -> pd.DataFrame:
    """A frame shaped like `Trainer.divergences`: flipped samples score higher on nll_long."""
    rng = np.random.default_rng(seed)
    flipped = np.arange(samples) % 4 == 0
    frames = []
    for epoch in range(1, epochs + 1):
        noise = rng.exponential(0.05, (2, samples))
        frame = pd.DataFrame(
            {
                "epoch": epoch,
                "index": np.arange(samples),
                "label": np.arange(samples) % 10,
                "clean_label": (np.arange(samples) + flipped) % 10,
                "flipped": flipped,
                "kl_long": np.where(epoch > lag, noise[0], np.nan),
                "kl_short": np.where(epoch > 1, noise[1], np.nan),
                "nll_long": np.where(epoch > lag, 0.5 + 2.0 * flipped + rng.normal(0, 0.5, samples), np.nan),
                "nll_short": np.where(epoch > 1, 0.5 + 1.5 * flipped + rng.normal(0, 0.5, samples), np.nan),
                "margin": rng.normal(0, 1, samples) + 2.0 * flipped,
                "student_agrees": ~flipped & (rng.uniform(size=samples) < 0.8),
            }
        )
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


# ---------------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------------
def test_comparison_figure_draws_one_line_and_band_per_method():
    fig = plots.comparison_figure(history_frame(methods=("ce", "short", "lstsd")), "test_acc", "t")
    ax = fig.axes[0]
    assert [line.get_label() for line in ax.lines] == ["ce", "short", "lstsd"]
    assert len(ax.collections) == 3  # the min–max bands
    assert ax.get_title() == "t"
    # the line is the mean over seeds
    h = history_frame(methods=("ce", "short", "lstsd"))
    expected = h[h.method == "short"].groupby("epoch").test_acc.mean().to_numpy()
    np.testing.assert_allclose(ax.lines[1].get_ydata(), expected)


def test_training_figure_has_test_and_train_panels():
    fig = plots.training_figure(history_frame(seeds=(0,)), "title")
    assert len(fig.axes) == 2
    assert [ax.get_ylabel() for ax in fig.axes] == ["test accuracy", "train accuracy (given labels)"]
    assert all(len(ax.lines) == 2 for ax in fig.axes)


def test_spread_figure_has_a_dot_per_run():
    summary = pd.DataFrame(
        [
            dict(method=m, seed=s, noise=n, final_test_acc=0.5 + 0.1 * s)
            for m in ("ce", "lstsd")
            for s in range(3)
            for n in (0.0, 0.3)
        ]
    )
    fig = plots.spread_figure(summary)
    dots = sum(
        len(c.get_offsets()) for c in fig.axes[0].collections if len(c.get_offsets()) and c.get_offsets().shape[1] == 2
    )
    assert dots >= len(summary)
    assert fig.axes[0].get_legend().get_title().get_text() == "noise"


def test_schedule_figure_writes_each_slot_record():
    schedule = teacher_schedule(3, "sliding", 6)
    fig = plots.schedule_figure(schedule)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert len(texts) == len(schedule)  # one label per (epoch, slot) cell
    assert texts.count("·") == int(schedule.holds.isna().sum())


def test_probabilities_figure_has_a_bar_per_class_and_temperature():
    frame = pd.DataFrame([dict(temperature=t, **{"class": c}, probability=0.1) for t in (1, 4) for c in range(5)])
    fig = plots.probabilities_figure(frame)
    assert len(fig.axes[0].patches) >= 10


def test_explorer_figure_marks_the_chosen_sample_and_epoch():
    d = divergence_frame()
    fig = plots.explorer_figure(d, epoch=4, sample=8, score="nll_long")
    left, middle, right = fig.axes[:3]
    assert "epoch 4" in left.get_title()
    assert "sample 8" in right.get_title() and "flipped" in right.get_title()
    assert right.lines[-1].get_xdata()[0] == 4  # the epoch cursor
    kl_long = right.lines[0]
    np.testing.assert_allclose(kl_long.get_xdata(), np.arange(1, 7))
    cursor = [line for line in middle.lines if line.get_label() == "sample 8"]
    expected = d[(d.epoch == 4) & (d["index"] == 8)].nll_long.iloc[0]
    assert cursor and cursor[0].get_xdata()[0] == pytest.approx(expected)


def test_explorer_figure_copes_with_epochs_without_teachers():
    d = divergence_frame()
    fig = plots.explorer_figure(d, epoch=1, sample=3, score="kl_long")  # no teacher at epoch 1
    assert "no sample has both teachers yet" in [t.get_text() for t in fig.axes[0].texts]
    assert any("no kl_long yet" in t.get_text() for t in fig.axes[1].texts)


def test_score_over_epochs_and_auc_figures():
    d = divergence_frame()
    fig = plots.score_over_epochs_figure(d, "nll_long")
    assert [line.get_label() for line in fig.axes[0].lines] == ["clean (median)", "flipped (median)"]
    auc = mislabel_auc(d)
    fig = plots.auc_figure(auc)
    labels = [line.get_label() for line in fig.axes[0].lines if not line.get_label().startswith("_")]
    assert sorted(labels) == sorted(SCORES)


def test_heatmap_figure_annotates_every_cell():
    grid = pd.DataFrame([dict(lag=g, w_long=w, final_test_acc=g * 0.01 + w) for g in (1, 2, 5) for w in (0.1, 0.3)])
    fig = plots.heatmap_figure(grid, "final_test_acc", center=0.2)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert len(texts) == 6 and f"{5 * 0.01 + 0.3:.3f}" in texts


# ---------------------------------------------------------------------------------------------
# The diagnostics frames
# ---------------------------------------------------------------------------------------------
def test_epoch_divergences_match_the_formulas():
    N, C, lag = 5, 4, 2
    g = torch.Generator().manual_seed(0)
    buffer = SnapshotBuffer(N, C, lag, dtype=torch.float32)
    records = [torch.randn(N, C, generator=g).log_softmax(1) for _ in range(3)]
    for epoch, log_p in enumerate(records):
        buffer.record(epoch, torch.arange(N), log_p)
    y = torch.tensor([0, 1, 2, 3, 0])
    train = TensorData(
        torch.zeros(N, 1), y, torch.tensor([0, 1, 2, 3, 1]), torch.tensor([False, False, False, False, True])
    )
    d = epoch_divergences(buffer, 2, train)  # epoch 2 (0-based): long = 0, short = 1
    q, long, short = records[2], records[0], records[1]

    def kl(log_p, log_q):  # Σ_c p_c (log p_c − log q_c)
        return (log_p.exp() * (log_p - log_q)).sum(1)

    assert (d.epoch == 3).all()
    torch.testing.assert_close(torch.tensor(d.kl_long.to_numpy()), kl(long, q))
    torch.testing.assert_close(torch.tensor(d.kl_short.to_numpy()), kl(short, q))
    torch.testing.assert_close(torch.tensor(d.nll_long.to_numpy()), -long[torch.arange(N), y])
    torch.testing.assert_close(torch.tensor(d.nll_short.to_numpy()), -short[torch.arange(N), y])
    for i in range(N):
        others = [q[i, c] for c in range(C) if c != y[i]]
        assert d.margin[i] == pytest.approx(float(max(others) - q[i, y[i]]), abs=1e-6)
    assert d.student_agrees.tolist() == (q.argmax(1) == y).tolist()
    assert d.long_agrees.tolist() == (long.argmax(1) == y).tolist()
    assert d.flipped.tolist() == [False] * 4 + [True]


def test_epoch_divergences_are_nan_without_teachers():
    N, C = 3, 3
    buffer = SnapshotBuffer(N, C, lag=3)
    buffer.record(0, torch.arange(N), torch.zeros(N, C).log_softmax(1))
    buffer.record(1, torch.arange(2), torch.zeros(2, C).log_softmax(1))  # sample 2 not seen
    train = TensorData(
        torch.zeros(N, 1),
        torch.zeros(N, dtype=torch.long),
        torch.zeros(N, dtype=torch.long),
        torch.zeros(N, dtype=torch.bool),
    )
    d = epoch_divergences(buffer, 1, train)
    assert d.kl_long.isna().all() and d.nll_long.isna().all()  # lag 3: no long teacher yet
    assert d.kl_short.notna().tolist() == [True, True, False]
    assert d.margin.notna().tolist() == [True, True, False]
    assert not d.long_agrees.any()


@pytest.mark.parametrize("lag", [1, 3])
def test_teacher_schedule_sliding(lag):
    s = teacher_schedule(lag, "sliding", 10)
    assert s.slot.nunique() == lag + 1
    long = s[s.long].set_index("epoch").holds
    short = s[s.short].set_index("epoch").holds
    assert long.index.tolist() == list(range(lag + 1, 11))
    assert (long == long.index - lag).all()
    assert (short == short.index - 1).all() and short.index.tolist() == list(range(2, 11))
    assert s[s.written].groupby("epoch").size().eq(1).all()


def test_teacher_schedule_phase():
    s = teacher_schedule(3, "phase", 9)
    assert s.slot.nunique() == 3
    long = s[s.long].set_index("epoch").holds
    # phases of 3 epochs (1-based: 1–3, 4–6, 7–9) are taught by the last epoch of the previous one
    assert long.to_dict() == {4: 3, 5: 3, 6: 3, 7: 6, 8: 6, 9: 6}
    short = s[s.short].set_index("epoch").holds
    assert (short == short.index - 1).all()


def test_roc_auc_matches_sklearn_with_ties():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    scores = rng.integers(0, 5, 200).astype(float)  # many ties
    positive = rng.uniform(size=200) < 0.3
    assert roc_auc(scores, positive) == pytest.approx(roc_auc_score(positive, scores))
    assert np.isnan(roc_auc([1.0, 2.0], [False, False]))


def test_mislabel_auc_and_best_auc():
    d = divergence_frame()
    auc = mislabel_auc(d)
    assert set(auc.columns) == {"epoch", "score", "auc"}
    assert "kl_long" not in set(auc[auc.epoch <= 2].score)  # no long teacher before lag + 1
    best = best_auc(auc)
    assert best.best_auc.is_monotonic_decreasing
    top = auc[auc.score == best.score.iloc[0]]
    assert best.best_auc.iloc[0] == top.auc.max()
    assert best.final_auc.iloc[0] == top.sort_values("epoch").auc.iloc[-1]
    assert best.score.iloc[0] in ("nll_long", "nll_short", "margin")  # the informative scores


def test_accuracy_cost_figure_one_panel_per_setting():
    import matplotlib

    matplotlib.use("Agg")
    import pandas as pd

    from lstsd_edu.plots import accuracy_cost_figure

    t = pd.DataFrame(
        {
            "method": ["ce", "lstsd", "snapshot"] * 2,
            "setting": ["a"] * 3 + ["b"] * 3,
            "final_acc_mean": [0.7, 0.75, 0.8, 0.9, 0.91, 0.9],
            "final_acc_std": [0.01] * 6,
            "cost_vs_ce": [1.0, 1.02, 1.4, 1.0, 1.01, 1.5],
        }
    ).set_index("method")
    fig = accuracy_cost_figure(t)
    assert [ax.get_title() for ax in fig.axes] == ["a", "b"]
    assert [text.get_text() for text in fig.axes[0].texts] == ["ce", "lstsd", "snapshot"]
    single = accuracy_cost_figure(t[t.setting == "a"].drop(columns="setting"), title="one")
    assert len(single.axes) == 1 and single.axes[0].get_title() == "one"
