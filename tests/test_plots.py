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
from lstsd_edu.config import Config
from lstsd_edu.data import TensorData
from lstsd_edu.diagnostics import (
    SCORES,
    epoch_divergences,
    loss_weights,
    milestones,
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
                "long_agrees": (epoch > lag) & ~flipped,
                "short_agrees": (epoch > 1) & ~flipped & (rng.uniform(size=samples) < 0.9),
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


def test_explorer_figure_has_one_panel_per_question_and_no_twin_axes():
    d = divergence_frame()
    fig = plots.explorer_figure(d, epoch=4, sample=8, score="nll_long", milestones={"short": 2, "long": 3})
    assert len(fig.axes) == 3  # histogram, the sample's score, who agrees: no twin axes
    hist, score, agree = fig.axes
    # the histogram: both groups, shared bins, the sample's value, a visible legend
    assert "epoch 4" in hist.get_title() and "nll_long" in hist.get_title()
    now = d[d.epoch == 4]
    assert len(hist.patches) == 80  # 40 shared bins for each group
    for group in (hist.patches[:40], hist.patches[40:]):  # each group's bars sum to 1
        assert sum(bar.get_height() for bar in group) == pytest.approx(1.0)
    assert [bar.get_x() for bar in hist.patches[:40]] == [bar.get_x() for bar in hist.patches[40:]]
    cursor = [line for line in hist.lines if line.get_label() == "sample 8"]
    assert cursor and cursor[0].get_xdata()[0] == pytest.approx(now[now["index"] == 8].nll_long.iloc[0])
    legend = [text.get_text() for text in hist.get_legend().get_texts()]
    assert legend == ["clean (30)", "flipped (10)", "sample 8"]
    # the sample over the epochs, next to the groups' medians, a line at the chosen epoch
    assert "sample 8" in score.get_title() and "flipped" in score.get_title()
    mine = next(line for line in score.lines if line.get_label() == "sample 8")
    np.testing.assert_allclose(mine.get_xdata(), np.arange(1, 7))
    assert [line.get_xdata()[0] for line in score.lines if line.get_label() == "epoch 4"] == [4]
    assert {"clean, median", "flipped, median"} <= {line.get_label() for line in score.lines}
    assert score.get_legend() is not None
    milestone_lines = [line.get_xdata()[0] for line in score.lines if line.get_label() == "_milestone"]
    assert milestone_lines == [2, 3]
    # who predicts the given label: the student and both teachers, none before its record exists
    assert [t.get_text() for t in agree.get_yticklabels()] == ["student", "short-term teacher", "long-term teacher"]
    marks = np.concatenate([c.get_offsets() for c in agree.collections if len(c.get_offsets())])
    long_row = marks[marks[:, 1] == 2]
    assert long_row[:, 0].min() == 3  # lag 2: the long-term teacher's first record is at epoch 3


def test_explorer_figure_copes_with_epochs_without_teachers():
    d = divergence_frame()
    fig = plots.explorer_figure(d, epoch=1, sample=3, score="kl_long")  # no teacher at epoch 1
    assert any("no kl_long yet" in t.get_text() for t in fig.axes[0].texts)
    assert fig.axes[1].get_yscale() == "log"


def test_explorer_figure_draws_kl_scores_on_log_axes():
    fig = plots.explorer_figure(divergence_frame(), epoch=5, sample=3, score="kl_short")
    assert fig.axes[0].get_xscale() == "log" and fig.axes[1].get_yscale() == "log"


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


def test_mislabel_auc_one_row_per_epoch_and_score():
    d = divergence_frame()
    auc = mislabel_auc(d)
    assert set(auc.columns) == {"epoch", "score", "auc"}
    assert "kl_long" not in set(auc[auc.epoch <= 2].score)  # no long teacher before lag + 1
    assert not auc.duplicated(["epoch", "score"]).any()
    assert auc.auc.between(0, 1).all()


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
    assert not fig.axes[0].texts  # no labels at the points: they would cover one another
    legend = fig.axes[-1].get_legend()
    assert [text.get_text() for text in legend.get_texts()] == ["ce", "lstsd", "snapshot"]
    colours = [matplotlib.colors.to_hex(h.get_color()) for h in legend.legend_handles]
    assert colours == [plots.method_colour(m).lower() for m in ("ce", "lstsd", "snapshot")]
    single = accuracy_cost_figure(t[t.setting == "a"].drop(columns="setting"), title="one")
    assert len(single.axes) == 1 and single.axes[0].get_title() == "one"
    selected = t.rename(columns={"final_acc_mean": "selected_acc_mean", "final_acc_std": "selected_acc_std"})
    fig = accuracy_cost_figure(selected, accuracy="selected_acc")
    assert fig.axes[0].get_ylabel() == "test accuracy, epoch chosen on validation"
    assert fig.axes[0].lines[1].get_ydata()[0] == 0.7  # ce's point (line 0 is CE's cost)


def test_differences_figure_one_row_per_method_ties_open():
    frame = pd.DataFrame(
        {
            "setting": ["a", "a", "b", "b"],
            "method": ["ce", "elr", "ce", "elr"],
            "difference": [0.06, 0.001, 0.02, -0.03],
            "low": [0.05, -0.01, 0.01, -0.05],
            "high": [0.07, 0.012, 0.03, -0.01],
            "verdict": ["better", "tie", "better", "worse"],
        }
    )
    fig = plots.differences_figure(frame)
    panels = [ax for ax in fig.axes if ax.get_title() in ("a", "b")]
    assert [ax.get_title() for ax in panels] == ["a", "b"]
    assert [t.get_text() for t in panels[0].get_yticklabels()] == ["ce", "elr"]
    for ax, part in zip(panels, (frame[frame.setting == "a"], frame[frame.setting == "b"])):
        points = [line for line in ax.lines if line.get_marker() == "o"]
        intervals = [line for line in ax.lines if line.get_marker() != "o" and line.get_label() != "_zero"]
        assert [line.get_xdata()[0] for line in points] == part.difference.tolist()
        assert [tuple(line.get_xdata()) for line in intervals] == list(zip(part.low, part.high))
        for line, row in zip(points, part.itertuples()):
            assert matplotlib.colors.to_hex(line.get_color()) == plots.method_colour(row.method).lower()
            open_point = matplotlib.colors.to_hex(line.get_markerfacecolor()) == "#ffffff"
            assert open_point == (row.verdict == "tie")
    assert panels[0].get_xlabel() == "lstsd − method, test accuracy"
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    legend = panels[-1].get_legend()
    assert legend.get_window_extent(renderer).x0 >= panels[-1].get_window_extent(renderer).x1
    one = plots.differences_figure(frame[frame.setting == "a"].drop(columns="setting").set_index("method"), title="x")
    assert [ax.get_title() for ax in one.axes] == ["x"]


# ---------------------------------------------------------------------------------------------
# One colour per method; legends beside the axes
# ---------------------------------------------------------------------------------------------
def test_every_method_has_a_colour_of_its_own():
    from lstsd_edu.methods import METHODS

    assert set(plots.METHOD_COLOURS) == set(METHODS)
    colours = [matplotlib.colors.to_hex(c) for c in plots.METHOD_COLOURS.values()]
    assert len(set(colours)) == len(colours)
    assert plots.method_colour("ce") == "#404040"  # a neutral dark grey
    r, g, b = matplotlib.colors.to_rgb(plots.method_colour("lstsd"))
    assert r > 0.8 and max(r, g, b) - min(r, g, b) > 0.7  # the most saturated: the most salient
    # a name outside the registry gets the same colour every time, not one of the methods'
    assert plots.method_colour("ce, wd 1e-3") == plots.method_colour("ce, wd 1e-3")
    assert plots.method_colour("ce, wd 1e-3") not in plots.METHOD_COLOURS.values()


def line_colours(ax) -> dict[str, str]:
    return {
        line.get_label(): matplotlib.colors.to_hex(line.get_color())
        for line in ax.lines
        if not line.get_label().startswith("_")
    }


def memorisation_frame(methods=("ce", "lstsd"), seeds=(0, 1), epochs=6) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    rows = []
    for m in methods:
        for s in seeds:
            for e in range(1, epochs + 1):
                given = min(1.0, 0.1 * e) if m == "ce" else 0.1
                rows.append(
                    dict(
                        method=m,
                        seed=s,
                        epoch=e,
                        flipped_as_given=given + rng.uniform(0, 0.02),
                        flipped_as_true=1 - given - rng.uniform(0, 0.02),
                        test_acc=rng.uniform(0.5, 0.7),
                    )
                )
    return pd.DataFrame(rows)


def test_a_method_has_the_same_colour_in_every_figure():
    h = history_frame(methods=("ce", "short", "lstsd"))
    figures = [
        plots.comparison_figure(h).axes[0],
        *plots.training_figure(h).axes,
        *plots.memorisation_figure(memorisation_frame(("ce", "short", "lstsd"))).axes,
    ]
    for ax in figures:
        for label, colour in line_colours(ax).items():
            method = label.split(":")[0]
            assert colour == plots.method_colour(method).lower(), (label, ax.get_ylabel())
    summary = pd.DataFrame([dict(method=m, seed=s, final_test_acc=0.5) for m in ("ce", "lstsd") for s in range(3)])
    ax = plots.spread_figure(summary, hue=None).axes[0]
    dots = [c for c in ax.collections if len(c.get_offsets()) == 3]
    assert [matplotlib.colors.to_hex(c.get_facecolor()[0]) for c in dots] == [
        plots.method_colour("ce").lower(),
        plots.method_colour("lstsd").lower(),
    ]


@pytest.mark.parametrize("make", ["comparison", "training", "memorisation", "accuracy_cost", "spread"])
def test_legends_of_methods_sit_beside_the_axes_not_on_them(make):
    h = history_frame()
    table = pd.DataFrame(
        {"method": ["ce", "lstsd"], "final_acc_mean": [0.7, 0.8], "final_acc_std": [0.01] * 2, "cost_vs_ce": [1, 1.1]}
    ).set_index("method")
    summary = pd.DataFrame(
        [dict(method=m, seed=s, noise=0.3, final_test_acc=0.5) for m in ("ce", "lstsd") for s in (0, 1)]
    )
    fig = {
        "comparison": lambda: plots.comparison_figure(h),
        "training": lambda: plots.training_figure(h),
        "memorisation": lambda: plots.memorisation_figure(memorisation_frame()),
        "accuracy_cost": lambda: plots.accuracy_cost_figure(table),
        "spread": lambda: plots.spread_figure(summary),
    }[make]()
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    legends = [(ax, legend) for ax in fig.axes for legend in [ax.get_legend(), *ax.artists] if legend is not None]
    assert legends
    for ax, legend in legends:
        assert legend.get_window_extent(renderer).x0 >= ax.get_window_extent(renderer).x1


# ---------------------------------------------------------------------------------------------
# Milestones
# ---------------------------------------------------------------------------------------------
def label_boxes(fig, labels):
    fig.canvas.draw()
    return [label.get_window_extent(fig.canvas.get_renderer()) for label in labels]


def test_mark_milestones_draws_a_labelled_line_at_each_epoch():
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(range(1, 31), np.linspace(0.2, 0.9, 30))
    labels = plots.mark_milestones(ax, {"short": 2, "ramp": 8, "long": 21})
    assert [line.get_xdata()[0] for line in ax.lines if line.get_label() == "_milestone"] == [2, 8, 21]
    assert [label.get_text() for label in labels] == ["short-term teacher", "ramp ends", "long-term teacher"]
    # the labels sit in a band above the data: the curve's highest point is below every label
    boxes = label_boxes(fig, labels)
    top = ax.transData.transform((30, 0.9))[1]
    assert all(box.y0 > top for box in boxes)
    assert all(tick <= 0.9 + 1e-9 for tick in ax.get_yticks())  # no tick in the band


@pytest.mark.parametrize("epochs", [(2, 3, 4), (8, 9, 30), (29, 30, 30)])
def test_labels_of_close_milestones_do_not_overlap(epochs):
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot([1, 30], [0, 1])
    ax.set_xlim(0, 31)
    labels = plots.mark_milestones(ax, dict(zip(("short", "ramp", "long"), epochs)))
    boxes = label_boxes(fig, labels)
    frame = ax.get_window_extent(fig.canvas.get_renderer())
    for i, a in enumerate(boxes):
        assert frame.x0 - 1 <= a.x0 and a.x1 <= frame.x1 + 1  # inside the axes, not on a legend beside it
        for b in boxes[i + 1 :]:
            assert not a.overlaps(b)


def test_figures_over_epochs_draw_the_milestones():
    marks = {"short": 2, "ramp": 3, "long": 4}
    h = history_frame()
    for fig in (
        plots.comparison_figure(h, milestones=marks),
        plots.training_figure(h, milestones=marks),
        plots.memorisation_figure(memorisation_frame(), marks),
        plots.score_over_epochs_figure(divergence_frame(), milestones=marks),
        plots.auc_figure(mislabel_auc(divergence_frame()), milestones=marks),
    ):
        for ax in fig.axes:
            assert [line.get_xdata()[0] for line in ax.lines if line.get_label() == "_milestone"] == [2, 3, 4]
            assert {t.get_text() for t in ax.texts} >= {"short-term teacher", "ramp ends", "long-term teacher"}
    # without milestones nothing is drawn
    assert not [line for line in plots.comparison_figure(h).axes[0].lines if line.get_label() == "_milestone"]


def test_weights_figure_draws_the_ramp_the_weights_in_effect_and_the_milestones():
    config = Config(lag=4, ramp=3, epochs=10, w_long=0.4, w_short=0.3)
    weights = loss_weights(config)
    fig = plots.weights_figure(weights, milestones(config), "t")
    (ax,) = fig.axes
    lines = {line.get_label(): line for line in ax.lines if not line.get_label().startswith("_")}
    np.testing.assert_allclose(lines["w_ce = 1 − the two in effect"].get_ydata(), weights.w_ce)
    np.testing.assert_allclose(lines["w_long(e) · m_long, in effect"].get_ydata(), weights.w_long * weights.m_long)
    np.testing.assert_allclose(lines["w_short(e) · m_short, in effect"].get_ydata(), weights.w_short * weights.m_short)
    np.testing.assert_allclose(lines["w_long(e), the ramp"].get_ydata(), weights.w_long)
    np.testing.assert_allclose(lines["w_short(e), the ramp"].get_ydata(), weights.w_short)
    assert lines["w_long(e) · m_long, in effect"].get_color() == plots.method_colour("long")
    assert lines["w_short(e) · m_short, in effect"].get_color() == plots.method_colour("short")
    assert lines["w_ce = 1 − the two in effect"].get_color() == plots.method_colour("ce")
    assert all(line.get_drawstyle() == "steps-post" for line in lines.values())  # a jump sits on its epoch
    assert [line.get_xdata()[0] for line in ax.lines if line.get_label() == "_milestone"] == [2, 3, 5]
    assert ax.get_xlabel() == "epoch" and ax.get_ylabel() == "weight in the loss"
    assert {text.get_text() for text in ax.get_legend().get_texts()} == set(lines)  # every curve named
    assert not [t for t in plots.weights_figure(weights).axes[0].lines if t.get_label() == "_milestone"]


# ---------------------------------------------------------------------------------------------
# Memorisation and the seed map
# ---------------------------------------------------------------------------------------------
def test_memorisation_figure_shows_given_and_true_label_shares_per_method():
    h = memorisation_frame()
    fig = plots.memorisation_figure(h, milestones={"short": 2, "long": 4}, title="t")
    share, accuracy = fig.axes
    assert share.get_ylabel() == "share of flipped training samples" and share.get_xlabel() == "epoch"
    lines = {line.get_label(): line for line in share.lines}
    assert {"ce: given label", "ce: true label", "lstsd: given label", "lstsd: true label"} <= set(lines)
    assert lines["ce: given label"].get_linestyle() == "-" and lines["ce: true label"].get_linestyle() == "--"
    # the line is the mean over seeds
    expected = h[h.method == "ce"].groupby("epoch").flipped_as_given.mean().to_numpy()
    np.testing.assert_allclose(lines["ce: given label"].get_ydata(), expected)
    assert len(share.collections) == 4  # a min–max band per line
    assert accuracy.get_ylabel() == "test accuracy" and set(line_colours(accuracy)) == {"ce", "lstsd"}
    for ax in fig.axes:
        assert [line.get_xdata()[0] for line in ax.lines if line.get_label() == "_milestone"] == [2, 4]
    keys = [[t.get_text() for t in legend.get_texts()] for legend in [accuracy.get_legend(), *accuracy.artists]]
    assert sorted(keys) == sorted([["ce", "lstsd"], ["given (wrong) label", "true label"]])
    # without a test accuracy: one panel
    assert len(plots.memorisation_figure(h.drop(columns="test_acc")).axes) == 1
    # a short run has whole epochs on its axis, not 1.5
    for ax in plots.memorisation_figure(memorisation_frame(epochs=4)).axes:
        assert all(float(tick).is_integer() for tick in ax.get_xticks())


def test_memorisation_figure_without_label_noise_says_so():
    h = memorisation_frame(epochs=8).assign(flipped_as_given=np.nan, flipped_as_true=np.nan)  # noise rate 0
    share, accuracy = plots.memorisation_figure(h, milestones={"short": 2, "long": 4}).axes
    assert "no flipped training samples" in " ".join(t.get_text() for t in share.texts)
    assert share.get_xlim() == (0.5, 8.5)  # the run's epochs, as on the accuracy panel
    assert accuracy.lines and not any("no flipped" in t.get_text() for t in accuracy.texts)
    assert {t.get_text() for t in share.texts} >= {"short-term teacher", "long-term teacher"}
    # with noise there is no such note
    share, _ = plots.memorisation_figure(memorisation_frame()).axes
    assert not any("no flipped" in t.get_text() for t in share.texts)


def test_seed_map_figure_colours_gain_over_spread_and_greys_ties():
    from lstsd_edu.diagnostics import seed_gain

    rng = np.random.default_rng(0)
    runs = pd.DataFrame(
        [
            dict(lag=lag, w_long=w, seed=s, gain=(0.05 if w == 0.3 else 0.0) + rng.normal(0, 0.01))
            for lag in (2, 5)
            for w in (0.1, 0.3)
            for s in range(4)
        ]
    )
    cells = seed_gain(runs, ["lag", "w_long"])
    fig = plots.seed_map_figure(cells)
    ax = fig.axes[0]
    texts = [t.get_text() for t in ax.texts]
    assert len(texts) == 4  # every cell is annotated with its gain
    for row in cells.itertuples():
        label = f"{row.gain:+.3f}" + ("\ntie" if row.tie else "")
        assert label in texts
    assert cells.tie.tolist() == [True, False, True, False]  # gain 0 ± noise is a tie, 0.05 is not
    grey = [p for p in ax.patches if matplotlib.colors.to_hex(p.get_facecolor()) == matplotlib.colors.to_hex("0.82")]
    assert len(grey) == int(cells.tie.sum())
    image = ax.images[0].get_array()
    assert image.mask.tolist() == [[True, False], [True, False]]  # ties are not coloured
    assert "gain ÷ seed spread" in fig.axes[1].get_ylabel()
    assert ax.get_ylabel() == "lag L (epochs)" and ax.get_xlabel() == "long-term weight w_long"  # with units
