"""Figures: pure functions from DataFrames to matplotlib Figures (seaborn style).

Nothing here trains or reads files; every function takes the tidy frames the trainer, the
experiments and the diagnostics produce, so the same figure appears in the CLI, the notebooks, the
widgets (`widgets.py` only wires sliders to these functions) and the tests (which run them under
the Agg backend).

    comparison_figure(history, metric, title)       a metric over epochs per method, band over seeds
    training_figure(history, title)                 test accuracy and train accuracy side by side
    memorisation_figure(history, milestones)        flipped training samples: predicted as their
                                                    given or their true label, and test accuracy
    spread_figure(summary, metric, hue)             one point per seed, mean per method
    accuracy_cost_figure(table)                     accuracy against seconds per epoch ÷ CE's
    differences_figure(differences)                 LSTSD minus each method, 95% interval, ties open
    schedule_figure(schedule)                       the buffer's ring: which record teaches when
    weights_figure(weights, milestones)             the loss's weights over epochs: the ramp's and
                                                    those in effect (w_ce takes a missing teacher's)
    probabilities_figure(frame)                     softmax(z / τ) for a few temperatures
    explorer_figure(divergences, epoch, sample)     one epoch's score, clean vs flipped; one sample
                                                    over the epochs
    score_over_epochs_figure(divergences, score)    clean vs flipped samples, epoch by epoch
    auc_figure(auc)                                 mislabel-detection ROC AUC per epoch
    heatmap_figure(grid, value, ...)                a hyperparameter grid as an annotated heatmap
    seed_map_figure(cells, ...)                     a grid of gains over seeds, ties in grey

One colour per method, in every figure: each method's class declares its `colour` (colour-blind
friendly, from the Okabe–Ito and Paul Tol palettes: CE dark grey, LSTSD vermillion, the most
salient), `METHOD_COLOURS` gathers them and `method_colour(name)` is what every figure asks.
Legends of several methods sit outside the axes, so they never hide a curve.

The figures over epochs take `milestones=` (from `diagnostics.milestones(config)`), drawn by
`mark_milestones`: a dashed vertical line where the short-term teacher arrives, where the ramp
ends and where the long-term teacher arrives, labelled in a band above the data.
"""

from __future__ import annotations

import zlib

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.lines import Line2D
from matplotlib.text import Annotation
from matplotlib.ticker import MaxNLocator

from .methods import METHODS

sns.set_theme(style="whitegrid", context="notebook")

CLEAN, FLIPPED = "#4C72B0", "#DD8452"  # clean and flipped samples, in every figure
KL_FLOOR = 1e-5  # KL values are drawn on a log axis; exact zeros are lifted to this floor

# ---------------------------------------------------------------------------------------------
# One colour per method
# ---------------------------------------------------------------------------------------------
METHOD_COLOURS: dict[str, str] = {name: cls.colour for name, cls in METHODS.items()}
# for a label outside the registry (a variant of your own, "ce, wd 1e-3"): a stable colour by name
OTHER_COLOURS = ("#88CCEE", "#DDCC77", "#CC6677", "#AA4499", "#117733", "#44AA99")


def method_colour(name: str) -> str:
    """The colour of method `name` in every figure (`METHOD_COLOURS`); any other name gets the same
    colour of `OTHER_COLOURS` every time it is asked for."""
    colour = METHOD_COLOURS.get(name)
    return colour or OTHER_COLOURS[zlib.crc32(str(name).encode()) % len(OTHER_COLOURS)]


METRIC_LABELS = {
    "test_acc": "test accuracy",
    "val_acc": "validation accuracy (noisy labels)",
    "train_acc": "train accuracy (given labels)",
    "test_loss": "test loss (nats)",
    "val_loss": "validation loss (nats)",
    "train_loss": "train loss (nats)",
    "final_test_acc": "test accuracy after the last epoch",
    "selected_test_acc": "test accuracy, epoch chosen on validation",
    "flipped_as_given": "share of flipped samples predicted as given label",
    "flipped_as_true": "share of flipped samples predicted as true label",
    "clean_correct": "share of clean samples predicted correctly",
}


def _metric_label(metric: str) -> str:
    return METRIC_LABELS.get(metric, metric.replace("_", " "))


SETTING_LABELS = {  # the axes of a grid over settings (`heatmap_figure`, `seed_map_figure`)
    "lag": "lag L (epochs)",
    "w_long": "long-term weight w_long",
    "w_short": "short-term weight w_short",
    "temperature": "temperature τ",
    "ramp": "ramp (epochs)",
    "epochs": "epochs",
    "noise": "noise rate (share of labels flipped)",
}


def _setting_label(setting: str) -> str:
    return SETTING_LABELS.get(setting, setting.replace("_", " "))


def _legend_outside(ax: plt.Axes, handles=None, labels=None, title: str | None = None):
    """A legend to the right of `ax`, outside it, so that it never hides a curve."""
    args = () if handles is None else (handles, labels)
    return ax.legend(
        *args,
        title=title,
        loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
        frameon=False,
        fontsize=9,
        title_fontsize=9,
        alignment="left",
    )


def _method_lines(ax: plt.Axes, history: pd.DataFrame, metric: str, linestyle: str = "-", suffix: str = "") -> None:
    """Mean over seeds as a line and the min–max over seeds as a band, one per method, in its colour.

    Each line is labelled with the method's name (and `suffix`).
    """
    for method, frame in history.groupby("method", sort=False):
        per_epoch = frame.groupby("epoch")[metric]
        mean, low, high = per_epoch.mean(), per_epoch.min(), per_epoch.max()
        colour = method_colour(method)
        ax.plot(mean.index, mean.values, color=colour, ls=linestyle, lw=2.0, label=f"{method}{suffix}")
        ax.fill_between(mean.index, low.values, high.values, color=colour, alpha=0.18, lw=0)


# ---------------------------------------------------------------------------------------------
# Milestones: where the teachers arrive and the ramp ends
# ---------------------------------------------------------------------------------------------
MILESTONE_LABELS = {"short": "short-term teacher", "ramp": "ramp ends", "long": "long-term teacher"}
MILESTONE_COLOUR = "0.35"
MILESTONE_ROW = 11.0  # points between two rows of milestone labels


def _renderer(fig: plt.Figure):
    get = getattr(fig.canvas, "get_renderer", None)
    return get() if get is not None else fig._get_renderer()


def mark_milestones(ax: plt.Axes, milestones: dict[str, int] | None) -> list[Annotation]:
    """A dashed vertical line at each milestone epoch of `ax` (name -> 1-based epoch, as
    `diagnostics.milestones` gives them), labelled at the top of the axes.

    Call it after the data is drawn (and the layout is done). The y axis is extended upwards so
    that the labels sit in a band above the data, never on a curve; a label goes right of its
    line, or left of it where the axes end, and on a row of its own where it would touch the
    label of a close milestone. Names in `MILESTONE_LABELS` get their label, others are shown
    as they are. Returns the labels.
    """
    if not milestones:
        return []
    fig = ax.figure
    renderer = _renderer(fig)
    frame = ax.get_window_extent(renderer)
    pixels_per_point = fig.dpi / 72
    ends: list[float] = []  # per row, the right edge (pixels) of its last label
    labels = []
    for epoch, name in sorted((int(epoch), name) for name, epoch in milestones.items()):
        ax.axvline(epoch, color=MILESTONE_COLOUR, lw=1.1, ls=(0, (5, 3)), zorder=1.5, label="_milestone")
        label = ax.annotate(
            MILESTONE_LABELS.get(name, name),
            xy=(epoch, 1.0),
            xycoords=ax.get_xaxis_transform(),  # x in epochs, y in axes fractions
            xytext=(3, -3),
            textcoords="offset points",
            ha="left",
            va="top",
            fontsize=8,
            color=MILESTONE_COLOUR,
            bbox=dict(facecolor="white", edgecolor="none", alpha=0.85, pad=0.6),  # over other milestones' lines
        )
        extent = label.get_window_extent(renderer)
        if extent.x1 > frame.x1:  # no room right of the line: the label goes on its left
            label.set_ha("right")
            label.xyann = (-3, -3)
            extent = label.get_window_extent(renderer)
        gap = 4 * pixels_per_point
        row = next((r for r, end in enumerate(ends) if extent.x0 > end + gap), len(ends))
        if row == len(ends):
            ends.append(extent.x1)
        else:
            ends[row] = extent.x1
        label.xyann = (label.xyann[0], -3 - MILESTONE_ROW * row)
        labels.append(label)
    # keep the data below the labels: the band they need, as a fraction of the axes' height
    band = min(0.5, (6 + MILESTONE_ROW * len(ends)) * pixels_per_point / max(frame.height, 1.0))
    low, high = ax.get_ylim()
    ticks = [tick for tick in ax.get_yticks() if low <= tick <= high]  # no tick in the band: 1.2 is no accuracy
    if ax.get_yscale() == "log":
        low_log, high_log = np.log10(low), np.log10(high)
        ax.set_ylim(low, 10 ** (low_log + (high_log - low_log) / (1 - band)))
    else:
        ax.set_ylim(low, low + (high - low) / (1 - band))
    ax.set_yticks(ticks)
    return labels


# ---------------------------------------------------------------------------------------------
# Methods over epochs
# ---------------------------------------------------------------------------------------------
def comparison_figure(
    history: pd.DataFrame, metric: str = "test_acc", title: str = "", milestones: dict[str, int] | None = None
) -> plt.Figure:
    """`metric` over epochs per method: the mean over seeds as a line, min–max over seeds as a band.

    `history` has columns method, seed, epoch and `metric` (as written by `compare`); `milestones`
    (from `diagnostics.milestones`) are drawn as vertical lines.
    """
    fig, ax = plt.subplots(figsize=(8, 4))
    _method_lines(ax, history, metric)
    ax.set(xlabel="epoch", ylabel=_metric_label(metric), title=title)
    _legend_outside(ax, title="method")
    fig.tight_layout()
    mark_milestones(ax, milestones)
    return fig


def training_figure(history: pd.DataFrame, title: str = "", milestones: dict[str, int] | None = None) -> plt.Figure:
    """Test accuracy (clean labels) next to train accuracy (on the labels trained on, noisy or not).

    A train accuracy above 1 − noise means the model has started to memorise flipped labels.
    `history` has columns method, epoch, test_acc, train_acc (and optionally seed).
    """
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), sharex=True)
    for ax, metric in zip(axes, ("test_acc", "train_acc")):
        _method_lines(ax, history, metric)
        ax.set(xlabel="epoch", ylabel=_metric_label(metric))
    _legend_outside(axes[1], title="method")
    fig.suptitle(title)
    fig.tight_layout()
    for ax in axes:
        mark_milestones(ax, milestones)
    return fig


def memorisation_figure(history: pd.DataFrame, milestones: dict[str, int] | None = None, title: str = "") -> plt.Figure:
    """The mechanism: what each method's model predicts for the *flipped* training samples.

    left:  per epoch, the share of flipped samples predicted as their given (wrong) label (solid:
           the noise memorised) and as their true label (dashed: the noise seen through), one
           colour per method, mean over seeds with a min–max band;
    right: test accuracy (if `history` has it), the same way.

    `history` has columns method, epoch, flipped_as_given, flipped_as_true (the Trainer writes
    them with `diagnostics=True`; `diagnostics.memorisation`) and optionally seed and test_acc.
    `milestones` (from `diagnostics.milestones`) are drawn as vertical lines on both panels.
    Without label noise (every share NaN: no flipped sample to count) the left panel says so.
    """
    with_test = "test_acc" in history and history.test_acc.notna().any()
    fig, axes = plt.subplots(1, 2 if with_test else 1, figsize=(12, 4.2) if with_test else (8, 4.2), squeeze=False)
    share_ax = axes[0, 0]
    _method_lines(share_ax, history, "flipped_as_given", "-", ": given label")
    _method_lines(share_ax, history, "flipped_as_true", "--", ": true label")
    if not history.flipped_as_given.notna().any():  # noise rate 0: no flipped sample to count
        share_ax.set_xlim(history.epoch.min() - 0.5, history.epoch.max() + 0.5)
        share_ax.text(
            0.6,
            0.45,
            "no flipped training samples:\nno noise to memorise",
            transform=share_ax.transAxes,
            ha="center",
            va="center",
            fontsize=10,
            color="0.35",
            bbox=dict(facecolor="white", edgecolor="none", pad=2.0),  # over the milestones' lines
        )
    share_ax.set(
        xlabel="epoch",
        ylabel="share of flipped training samples",
        ylim=(0.0, 1.0),
        yticks=np.linspace(0.0, 1.0, 6),
        title="flipped samples: predicted as given (—) or true (--) label",
    )
    share_ax.title.set_fontsize(11)
    if with_test:
        acc_ax = axes[0, 1]
        _method_lines(acc_ax, history, "test_acc")
        acc_ax.set(xlabel="epoch", ylabel=_metric_label("test_acc"), title="test accuracy (clean labels)")
        acc_ax.title.set_fontsize(11)
    # two keys beside the last panel: the colours (methods) at the top, the line styles at the bottom
    methods = list(dict.fromkeys(history["method"]))
    handles = [Line2D([], [], color=method_colour(m), lw=2.0) for m in methods]
    colours = _legend_outside(axes[0, -1], handles, methods, title="method")
    axes[0, -1].legend(
        [Line2D([], [], color="0.3", lw=1.5), Line2D([], [], color="0.3", lw=1.5, ls="--")],
        ["given (wrong) label", "true label"],
        title="flipped samples\npredicted as",
        loc="lower left",
        bbox_to_anchor=(1.02, 0.0),
        frameon=False,
        fontsize=9,
        title_fontsize=9,
        handlelength=2.6,
        alignment="left",
    )
    axes[0, -1].add_artist(colours)
    for ax in axes[0]:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 5, 10]))  # whole epochs, also in a short run
    fig.suptitle(title)
    fig.tight_layout()
    for ax in axes[0]:
        mark_milestones(ax, milestones)
    return fig


# ---------------------------------------------------------------------------------------------
# Methods side by side
# ---------------------------------------------------------------------------------------------
MARKERS = ("o", "s", "^", "D", "v", "P")


def spread_figure(
    summary: pd.DataFrame, metric: str = "final_test_acc", hue: str | None = "noise", title: str = ""
) -> plt.Figure:
    """`metric` per method: one dot per seed in the method's colour, the mean as a black tick; with
    `hue` (e.g. the noise rate) one column of dots per value, told apart by marker shape.

    `summary` has one row per run (as written by `compare`), with columns method and `metric`.
    """
    methods = list(dict.fromkeys(summary["method"]))
    levels = [None] if hue is None else sorted(summary[hue].unique())
    width = 0.7 / len(levels)  # each method's slot is shared by its hue levels
    rng = np.random.default_rng(0)  # the jitter, the same every time
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(methods) * len(levels) + 2.5), 4))
    for i, method in enumerate(methods):
        for j, level in enumerate(levels):
            part = summary[(summary["method"] == method) & ((summary[hue] == level) if hue is not None else True)]
            values = part[metric].to_numpy(dtype=float)
            if not len(values):
                continue
            x = i + (j - (len(levels) - 1) / 2) * width
            jitter = rng.uniform(-0.25, 0.25, len(values)) * width
            ax.scatter(
                x + jitter, values, s=36, color=method_colour(method), marker=MARKERS[j % len(MARKERS)], alpha=0.8
            )
            ax.hlines(values.mean(), x - 0.4 * width, x + 0.4 * width, color="black", lw=2)
    ax.set(
        xticks=range(len(methods)),
        xticklabels=methods,
        xlim=(-0.6, len(methods) - 0.4),
        xlabel="method",
        ylabel=_metric_label(metric),
        title=title,
    )
    handles = [Line2D([], [], color="black", lw=2)]
    labels = ["mean over seeds"]
    if hue is not None:
        handles += [
            Line2D([], [], color="0.45", marker=MARKERS[j % len(MARKERS)], ls="none", ms=7) for j in range(len(levels))
        ]
        labels += [f"{level:g}" if isinstance(level, float) else str(level) for level in levels]
    _legend_outside(ax, handles, labels, title=hue)
    fig.tight_layout()
    return fig


def accuracy_cost_figure(table: pd.DataFrame, title: str = "", accuracy: str = "final_acc") -> plt.Figure:
    """Accuracy against cost, one point per method in its colour (up and to the left is better).

    `table` is `experiments.table(summary)`: methods as the index, columns `<accuracy>_mean`,
    `<accuracy>_std` (`accuracy`: "final_acc", after the last epoch, or "selected_acc", at the
    epoch chosen on validation) and cost_vs_ce (seconds per epoch ÷ CE's seconds per epoch,
    measured in the same run). With a `setting` column (several tables stacked) there is one
    panel per setting. The methods are named in one legend beside the panels, not at the points,
    so no label covers another.
    """
    frame = table.reset_index()
    settings = list(frame["setting"].unique()) if "setting" in frame else [title]
    fig, axes = plt.subplots(1, len(settings), figsize=(4.8 * len(settings) + 1.8, 4.2), squeeze=False)
    for ax, setting in zip(axes[0], settings):
        part = frame[frame["setting"] == setting] if "setting" in frame else frame
        ax.axvline(1.0, color="0.6", lw=1, ls="--")  # CE's cost
        for row in part.itertuples():
            ax.errorbar(
                row.cost_vs_ce,
                getattr(row, f"{accuracy}_mean"),
                yerr=getattr(row, f"{accuracy}_std"),
                fmt="o",
                color=method_colour(row.method),
                capsize=3,
                ms=7,
                label=row.method,
            )
        ylabel = _metric_label(f"{accuracy.removesuffix('_acc')}_test_acc")  # final_test_acc, selected_test_acc
        ax.set(xlabel="seconds per epoch ÷ CE's", ylabel=ylabel, title=setting)
    methods = list(dict.fromkeys(frame["method"]))
    handles = [Line2D([], [], color=method_colour(m), marker="o", ls="none", ms=7) for m in methods]
    _legend_outside(axes[0, -1], handles, methods, title="method")
    fig.tight_layout()
    return fig


def differences_figure(frame: pd.DataFrame, reference: str = "lstsd", title: str = "") -> plt.Figure:
    """`reference` minus each method with its interval, one row per method in its colour.

    `frame` is `tuning.differences(result)` (or `paired_differences`): methods as the index or a
    `method` column, columns difference, low, high and verdict; with a `setting` column (several
    stacked) there is one panel per setting, the methods in the same rows in each. Right of the
    zero line `reference` is ahead. A filled point: the interval leaves 0 out (`better` or
    `worse`); an open point: it holds 0, a tie. The methods are named on the y axis.
    """
    frame = frame.reset_index()
    settings = list(frame["setting"].unique()) if "setting" in frame else [title]
    methods = list(dict.fromkeys(frame["method"]))
    fig, axes = plt.subplots(
        1, len(settings), figsize=(3.9 * len(settings) + 2.6, 0.32 * len(methods) + 1.7), squeeze=False, sharey=True
    )
    for ax, setting in zip(axes[0], settings):
        part = frame[frame["setting"] == setting] if "setting" in frame else frame
        ax.axvline(0.0, color="0.45", lw=1.1, label="_zero")
        for row in part.itertuples():
            y = methods.index(row.method)
            colour = method_colour(row.method)
            ax.plot([row.low, row.high], [y, y], color=colour, lw=2.2, solid_capstyle="butt")
            tie = row.verdict == "tie"
            ax.plot(
                row.difference,
                y,
                "o",
                ms=7,
                color=colour,
                markerfacecolor="white" if tie else colour,
                markeredgewidth=1.8,
            )
        ax.set(
            yticks=range(len(methods)),
            ylim=(len(methods) - 0.5, -0.5),
            xlabel=f"{reference} − method, test accuracy",
            title=setting,
        )
        ax.grid(axis="y", visible=False)
    axes[0, 0].set_yticklabels(methods)
    handles = [
        Line2D([], [], color="0.3", marker="o", ms=7, ls="none"),
        Line2D([], [], color="0.3", marker="o", ms=7, ls="none", markerfacecolor="white", markeredgewidth=1.8),
        Line2D([], [], color="0.3", lw=2.2),
    ]
    labels = [f"{reference} better or worse", "tie: interval holds 0", "95% interval (paired by seed)"]
    _legend_outside(axes[0, -1], handles, labels)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------
# The buffer and the loss
# ---------------------------------------------------------------------------------------------
def schedule_figure(schedule: pd.DataFrame, title: str = "") -> plt.Figure:
    """The ring of slots over epochs (from `diagnostics.teacher_schedule`).

    Each cell shows the epoch whose record a slot holds when an epoch starts; the slot the
    long-term teachers are read from is coloured, the short-term one hatched, and the slot the
    epoch writes to is framed.
    """
    epochs = int(schedule.epoch.max())
    slots = int(schedule.slot.max()) + 1
    fig, ax = plt.subplots(figsize=(max(6.0, 0.55 * epochs + 1.5), 0.5 * slots + 1.6))
    for row in schedule.itertuples():
        x, y = row.epoch - 0.5, row.slot - 0.5
        face = FLIPPED if row.long else ("white" if not row.short else "#DDE6F3")
        ax.add_patch(
            plt.Rectangle((x, y), 1, 1, facecolor=face, edgecolor="0.8", lw=0.8, hatch="///" if row.short else None)
        )
        if row.written:
            ax.add_patch(plt.Rectangle((x + 0.06, y + 0.06), 0.88, 0.88, fill=False, edgecolor="black", lw=1.6))
        text = "·" if pd.isna(row.holds) else str(int(row.holds))
        ax.text(row.epoch, row.slot, text, ha="center", va="center", fontsize=9)
    ax.set(
        xlim=(0.5, epochs + 0.5),
        ylim=(slots - 0.5, -0.5),
        xlabel="training epoch",
        ylabel="slot",
        xticks=range(1, epochs + 1),
        yticks=range(slots),
        title=title,
    )
    ax.grid(False)
    handles = [
        plt.Rectangle((0, 0), 1, 1, facecolor=FLIPPED, edgecolor="0.8"),
        plt.Rectangle((0, 0), 1, 1, facecolor="#DDE6F3", hatch="///", edgecolor="0.8"),
        plt.Rectangle((0, 0), 1, 1, fill=False, edgecolor="black", lw=1.6),
    ]
    ax.legend(
        handles,
        ["long-term teacher", "short-term teacher", "written this epoch"],
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        frameon=False,
    )
    fig.tight_layout()
    return fig


def weights_figure(weights: pd.DataFrame, milestones: dict[str, int] | None = None, title: str = "") -> plt.Figure:
    """The LSTSD loss's weights over epochs (from `diagnostics.loss_weights`).

    Solid, the weights in effect for a sample seen every epoch: w_long · m_long, w_short · m_short
    and w_ce, each in the colour of the method it stands for (long, short, ce); dotted beneath, the
    ramp's w_long(e) and w_short(e), which a weight in effect follows once its teacher exists. An
    epoch's weights hold from its epoch to the next (steps), so a jump sits on its milestone line.
    """
    fig, ax = plt.subplots(figsize=(8, 3.8))
    e = weights.epoch
    for key, name in (("long", "long"), ("short", "short")):
        colour = method_colour(name)
        ax.plot(
            e,
            weights[f"w_{key}"],
            color=colour,
            lw=1.4,
            ls=":",
            drawstyle="steps-post",
            zorder=2,
            label=f"w_{key}(e), the ramp",
        )
        ax.plot(
            e,
            weights[f"w_{key}"] * weights[f"m_{key}"],
            color=colour,
            lw=2.2,
            drawstyle="steps-post",
            zorder=3,
            label=f"w_{key}(e) · m_{key}, in effect",
        )
    ax.plot(
        e,
        weights.w_ce,
        color=method_colour("ce"),
        lw=2.2,
        drawstyle="steps-post",
        zorder=3,
        label="w_ce = 1 − the two in effect",
    )
    ax.set(
        xlabel="epoch",
        ylabel="weight in the loss",
        title=title,
        ylim=(-0.03, 1.05),
        xlim=(e.min() - 0.5, e.max() + 0.5),
    )
    _legend_outside(ax, title="weights (a sample seen every epoch)")
    fig.tight_layout()
    mark_milestones(ax, milestones)
    return fig


def probabilities_figure(frame: pd.DataFrame, title: str = "") -> plt.Figure:
    """Bars of `probability` per `class`, one colour per `temperature` (a tidy frame)."""
    fig, ax = plt.subplots(figsize=(7, 3.4))
    sns.barplot(data=frame, x="class", y="probability", hue="temperature", ax=ax, palette="crest")
    ax.set(title=title)
    ax.legend(title="τ", loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------
# Per-sample divergences (frames from `diagnostics.epoch_divergences`, stacked over epochs)
# ---------------------------------------------------------------------------------------------
SCORE_LABELS = {
    "kl_long": "KL(long-term teacher ‖ student) (nats)",
    "kl_short": "KL(short-term teacher ‖ student) (nats)",
    "nll_long": "−log p_long(given label) (nats)",
    "nll_short": "−log p_short(given label) (nats)",
    "margin": "best other class − given class, log q (nats)",
}
# who predicts the given label, in the order the explorer draws them (top to bottom), and the
# score that exists exactly where that model's record does
AGREEMENT = (
    ("student_agrees", "student", "margin"),
    ("short_agrees", "short-term teacher", "nll_short"),
    ("long_agrees", "long-term teacher", "nll_long"),
)


def _kl(values: pd.Series) -> np.ndarray:
    return np.maximum(values.to_numpy(dtype=float), KL_FLOOR)


def _score_label(score: str) -> str:
    return SCORE_LABELS.get(score, score)


def explorer_figure(
    divergences: pd.DataFrame,
    epoch: int,
    sample: int,
    score: str = "nll_long",
    milestones: dict[str, int] | None = None,
) -> plt.Figure:
    """One question per panel, about the samples at `epoch` and about sample `sample`:

    left:         does `score` tell flipped from clean samples at `epoch`? A histogram per group
                  (shared bins; each group's bars sum to 1), `sample`'s value as a black line;
    right, top:   how does `sample`'s score move over the epochs? Its score (black) next to the
                  median of the clean and of the flipped samples; a grey line at `epoch`,
                  `milestones` as dashed lines;
    right, below: does each model predict `sample`'s given label? Per epoch, for the student and
                  its two teachers: a filled square where it predicts the given label, an open
                  one where it predicts another class, nothing where that record does not exist.

    KL scores are drawn on log axes (exact zeros lifted to KL_FLOOR). `divergences` is
    `Trainer.divergences` (columns epoch, index, label, clean_label, flipped, the scores and the
    agreements).
    """
    log = score.startswith("kl_")
    fig = plt.figure(figsize=(13, 5.0))
    grid = fig.add_gridspec(2, 2, width_ratios=(1.0, 1.3), height_ratios=(2.2, 1.0))
    hist_ax = fig.add_subplot(grid[:, 0])
    score_ax = fig.add_subplot(grid[0, 1])
    agree_ax = fig.add_subplot(grid[1, 1], sharex=score_ax)
    # -- left: one epoch, clean vs flipped -----------------------------------------------------
    now = divergences[divergences.epoch == epoch].dropna(subset=[score])
    if len(now):
        values = _kl(now[score]) if log else now[score].to_numpy(dtype=float)
        if log and values.max() > values.min():
            bins = np.geomspace(values.min(), values.max(), 41)
            hist_ax.set_xscale("log")
        else:
            bins = np.histogram_bin_edges(values, bins=40)
        flipped = now.flipped.to_numpy(dtype=bool)
        for group, colour, label in ((~flipped, CLEAN, "clean"), (flipped, FLIPPED, "flipped")):
            n = int(group.sum())
            if n:
                weights = np.full(n, 1.0 / n)  # each group's bars sum to 1: groups of any size compare
                hist_ax.hist(
                    values[group], bins=bins, weights=weights, color=colour, alpha=0.55, label=f"{label} ({n:,})"
                )
        mine = now.loc[now["index"] == sample, score]
        if len(mine):
            value = max(float(mine.iloc[0]), KL_FLOOR) if log else float(mine.iloc[0])
            hist_ax.axvline(value, color="black", lw=2, label=f"sample {sample}")
        hist_ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3, frameon=False, fontsize=9)
    else:
        hist_ax.text(
            0.5, 0.5, f"no {score} yet at epoch {epoch}", ha="center", va="center", transform=hist_ax.transAxes
        )
    hist_ax.set(
        xlabel=_score_label(score),
        ylabel="share of the group's samples",
        title=f"epoch {epoch}: {score} of clean vs flipped samples",
    )
    # -- right, top: the sample's score over the epochs ------------------------------------------
    for flipped, colour, label in ((False, CLEAN, "clean, median"), (True, FLIPPED, "flipped, median")):
        median = divergences.loc[divergences.flipped == flipped].groupby("epoch")[score].median().dropna()
        if len(median):
            score_ax.plot(median.index, median.values, color=colour, lw=1.5, ls="--", label=label)
    mine = divergences[divergences["index"] == sample].sort_values("epoch")
    score_ax.plot(mine.epoch, mine[score], color="black", lw=2, marker="o", ms=3.5, label=f"sample {sample}")
    score_ax.axvline(epoch, color="0.5", lw=1.5, label=f"epoch {epoch}")
    if log and mine[score].notna().any():
        score_ax.set_yscale("log")
    if len(mine):
        row = mine.iloc[0]
        status = "flipped" if row.flipped else "clean"
        title = f"sample {sample} (given label {row.label}, true {row.clean_label}: {status}): {score} over epochs"
    else:
        title = f"sample {sample}: not in the frame"
    score_ax.set(ylabel=f"{score} (nats)", title=title)
    score_ax.tick_params(labelbottom=False)
    _legend_outside(score_ax)
    # -- right, below: who predicts the given label ------------------------------------------------
    rows = [(column, name, exists) for column, name, exists in AGREEMENT if column in divergences]
    for y, (column, _, exists) in enumerate(rows):
        present = mine[exists].notna().to_numpy() if exists in mine else np.ones(len(mine), dtype=bool)
        agrees = mine[column].to_numpy(dtype=bool)
        epochs = mine.epoch.to_numpy()
        agree_ax.scatter(epochs[present & agrees], np.full((present & agrees).sum(), y), marker="s", s=40, color="0.2")
        agree_ax.scatter(
            epochs[present & ~agrees],
            np.full((present & ~agrees).sum(), y),
            marker="s",
            s=40,
            facecolors="none",
            edgecolors="0.2",
        )
    agree_ax.axvline(epoch, color="0.5", lw=1.5)
    agree_ax.set(
        yticks=range(len(rows)),
        yticklabels=[name for _, name, _ in rows],
        ylim=(len(rows) - 0.5, -0.5),
        xlabel="epoch",
        title="predicts the given label? ■ yes, □ no (another class), blank: no record yet",
    )
    agree_ax.grid(axis="y", visible=False)
    for ax in (hist_ax, score_ax, agree_ax):
        ax.title.set_fontsize(10.5)
    fig.tight_layout()
    mark_milestones(score_ax, milestones)
    return fig


def score_over_epochs_figure(
    divergences: pd.DataFrame, score: str = "nll_long", title: str = "", milestones: dict[str, int] | None = None
) -> plt.Figure:
    """Median (line) and 25–75 % range (band) of `score` per epoch, clean vs flipped samples."""
    fig, ax = plt.subplots(figsize=(8, 3.8))
    for flipped, color, label in ((False, CLEAN, "clean"), (True, FLIPPED, "flipped")):
        per_epoch = divergences.loc[divergences.flipped == flipped].groupby("epoch")[score]
        q = per_epoch.quantile([0.25, 0.5, 0.75]).unstack().dropna()
        if len(q):
            ax.plot(q.index, q[0.5], color=color, lw=1.8, label=f"{label} (median)")
            ax.fill_between(q.index, q[0.25], q[0.75], color=color, alpha=0.25, lw=0)
    ax.set(xlabel="epoch", ylabel=_score_label(score), title=title or f"{score}: clean vs flipped samples")
    if ax.lines:
        _legend_outside(ax)
    else:
        ax.text(0.5, 0.5, f"no {score} in any epoch", ha="center", va="center", transform=ax.transAxes)
    fig.tight_layout()
    mark_milestones(ax, milestones)
    return fig


def auc_figure(auc: pd.DataFrame, title: str = "", milestones: dict[str, int] | None = None) -> plt.Figure:
    """ROC AUC of each mislabel score per epoch (from `diagnostics.mislabel_auc`); 0.5 = chance."""
    fig, ax = plt.subplots(figsize=(8, 3.8))
    for score, frame in auc.groupby("score", sort=False):
        ax.plot(frame.epoch, frame.auc, marker="o", ms=3, lw=1.6, label=score)
    ax.axhline(0.5, color="0.5", lw=1, ls="--")
    ax.set(
        xlabel="epoch",
        ylabel="ROC AUC (flipped vs clean)",
        ylim=(0.3, 1.01),
        title=title or "How well each score flags flipped labels",
    )
    if len(auc):
        _legend_outside(ax, title="score")
    fig.tight_layout()
    mark_milestones(ax, milestones)
    return fig


# ---------------------------------------------------------------------------------------------
# Grids of settings
# ---------------------------------------------------------------------------------------------
def heatmap_figure(
    grid: pd.DataFrame,
    value: str,
    rows: str = "lag",
    columns: str = "w_long",
    center: float | None = None,
    title: str = "",
    fmt: str = ".3f",
) -> plt.Figure:
    """`value` over a two-parameter grid (one row of `grid` per cell), annotated.

    With `center` the colours diverge around it (e.g. the baseline's accuracy).
    """
    table = grid.pivot_table(index=rows, columns=columns, values=value)  # [rows, columns]
    fig, ax = plt.subplots(figsize=(1.2 * table.shape[1] + 2.5, 0.6 * table.shape[0] + 1.8))
    values = table.to_numpy(dtype=float)
    if center is None:
        image = ax.imshow(values, cmap="crest", aspect="auto")
    else:  # symmetric around `center`: equal distances above and below get equal colour strength
        spread = np.nanmax(np.abs(values - center)) or 1.0
        image = ax.imshow(values, cmap="vlag_r", aspect="auto", vmin=center - spread, vmax=center + spread)
    for (i, j), v in np.ndenumerate(values):
        if not np.isnan(v):
            ax.text(j, i, format(v, fmt), ha="center", va="center", fontsize=9)
    fig.colorbar(image, ax=ax, label=value)
    ax.set(
        xticks=range(table.shape[1]),
        xticklabels=[f"{c:g}" for c in table.columns],
        yticks=range(table.shape[0]),
        yticklabels=[f"{r:g}" for r in table.index],
        xlabel=_setting_label(columns),
        ylabel=_setting_label(rows),
        title=title,
    )
    ax.grid(False)
    fig.tight_layout()
    return fig


def seed_map_figure(cells: pd.DataFrame, rows: str = "lag", columns: str = "w_long", title: str = "") -> plt.Figure:
    """A grid of gains over seeds (from `diagnostics.seed_gain`): each cell coloured by gain ÷
    seed spread, annotated with the gain; a cell whose interval holds 0 (`tie`) is grey.

    The colour says how many seed spreads the gain is away from 0, so a large gain that the seeds
    disagree on looks pale and a small one they agree on looks strong; the grey cells are those
    where this many seeds cannot tell the sign of the gain. A cell the grid has no run for is
    left white.
    """
    ratio = cells.pivot(index=rows, columns=columns, values="ratio")  # [rows, columns]
    gain = cells.pivot(index=rows, columns=columns, values="gain").to_numpy(dtype=float)
    tie = cells.assign(tie=cells.tie.astype(float)).pivot(index=rows, columns=columns, values="tie")
    tie = tie.to_numpy(dtype=float) == 1.0  # a missing cell is no tie: it is left white
    values = ratio.to_numpy(dtype=float)
    shown = np.isfinite(gain) & ~tie
    limit = max(3.0, float(np.nanmax(np.abs(np.where(np.isfinite(values) & shown, values, np.nan)), initial=0.0)))
    colours = plt.get_cmap("RdBu").with_extremes(bad="white")  # a cell without a run stays white
    image_values = np.ma.masked_where(~shown, np.clip(values, -limit, limit))
    fig, ax = plt.subplots(figsize=(1.25 * ratio.shape[1] + 3.0, 0.65 * ratio.shape[0] + 2.0))
    image = ax.imshow(image_values, cmap=colours, vmin=-limit, vmax=limit, aspect="auto")
    for (i, j), g in np.ndenumerate(gain):
        if not np.isfinite(g):
            continue
        if tie[i, j]:
            ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, facecolor="0.82", edgecolor="white", lw=1))
            ax.text(j, i, f"{g:+.3f}\ntie", ha="center", va="center", fontsize=8.5, color="0.3")
        else:
            strong = abs(np.clip(values[i, j], -limit, limit)) > 0.6 * limit
            ax.text(j, i, f"{g:+.3f}", ha="center", va="center", fontsize=9, color="white" if strong else "black")
    fig.colorbar(image, ax=ax, label="gain ÷ seed spread")
    seeds = int(cells.seeds.min()) if len(cells) else 0
    ax.set(
        xticks=range(ratio.shape[1]),
        xticklabels=[f"{c:g}" for c in ratio.columns],
        yticks=range(ratio.shape[0]),
        yticklabels=[f"{r:g}" for r in ratio.index],
        xlabel=_setting_label(columns),
        ylabel=_setting_label(rows),
        title=title or f"gain over {seeds} seeds (grey: 95 % interval holds 0, a tie)",
    )
    ax.title.set_fontsize(10.5)
    ax.grid(False)
    fig.tight_layout()
    return fig
