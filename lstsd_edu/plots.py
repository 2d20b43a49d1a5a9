"""Figures: pure functions from DataFrames to matplotlib Figures (seaborn style).

Nothing here trains or reads files; every function takes the tidy frames the trainer, the
experiments and the diagnostics produce, so the same figure appears in the CLI, the notebooks, the
widgets (`widgets.py` only wires sliders to these functions) and the tests (which run them under
the Agg backend).

    comparison_figure(history, metric, title)     a metric over epochs per method, band over seeds
    training_figure(history, title)               test accuracy and train accuracy side by side
    spread_figure(summary, metric, hue)           one point per seed, mean per method
    schedule_figure(schedule)                     the buffer's ring: which record teaches when
    probabilities_figure(frame)                   softmax(z / τ) for a few temperatures
    explorer_figure(divergences, epoch, sample)   the per-sample divergence explorer
    score_over_epochs_figure(divergences, score)  clean vs flipped samples, epoch by epoch
    auc_figure(auc)                               mislabel-detection ROC AUC per epoch
    heatmap_figure(grid, value, ...)              a hyperparameter grid as an annotated heatmap
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

sns.set_theme(style="whitegrid", context="notebook")

CLEAN, FLIPPED = "#4C72B0", "#DD8452"  # clean and flipped samples, in every figure
KL_FLOOR = 1e-5  # KL values are drawn on a log axis; exact zeros are lifted to this floor


def _method_lines(ax: plt.Axes, history: pd.DataFrame, metric: str) -> None:
    """Mean over seeds as a line and the min–max over seeds as a band, one per method."""
    for method, frame in history.groupby("method", sort=False):
        per_epoch = frame.groupby("epoch")[metric]
        mean, low, high = per_epoch.mean(), per_epoch.min(), per_epoch.max()
        (line,) = ax.plot(mean.index, mean.values, label=method, lw=1.8)
        ax.fill_between(mean.index, low.values, high.values, color=line.get_color(), alpha=0.2, lw=0)


def comparison_figure(history: pd.DataFrame, metric: str = "test_acc", title: str = "") -> plt.Figure:
    """`metric` over epochs per method: the mean over seeds as a line, min–max over seeds as a band.

    `history` has columns method, seed, epoch and `metric` (as written by `compare`).
    """
    fig, ax = plt.subplots(figsize=(7, 4))
    _method_lines(ax, history, metric)
    ax.set(xlabel="epoch", ylabel=metric.replace("_", " "), title=title)
    ax.legend(title="method", loc="lower right")
    fig.tight_layout()
    return fig


def training_figure(history: pd.DataFrame, title: str = "") -> plt.Figure:
    """Test accuracy (clean labels) next to train accuracy (on the labels trained on, noisy or not).

    A train accuracy above 1 − noise means the model has started to memorise flipped labels.
    `history` has columns method, epoch, test_acc, train_acc (and optionally seed).
    """
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharex=True)
    for ax, metric, label in zip(axes, ("test_acc", "train_acc"), ("test accuracy", "train accuracy (given labels)")):
        _method_lines(ax, history, metric)
        ax.set(xlabel="epoch", ylabel=label)
    axes[0].legend(title="method", loc="lower right")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def spread_figure(
    summary: pd.DataFrame, metric: str = "final_test_acc", hue: str | None = "noise", title: str = ""
) -> plt.Figure:
    """`metric` per method: one dot per seed, the mean as a bar tick; coloured by `hue` if given.

    `summary` has one row per run (as written by `compare`), with columns method and `metric`.
    """
    fig, ax = plt.subplots(figsize=(7, 4))
    if hue is not None:  # categories, not a colour scale: 0.0 and 0.3 should look different
        summary = summary.assign(**{hue: summary[hue].map(lambda v: f"{v:g}" if isinstance(v, float) else str(v))})
    kwargs = dict(data=summary, x="method", y=metric, hue=hue, ax=ax, palette="deep" if hue is not None else None)
    sns.stripplot(**kwargs, dodge=hue is not None, alpha=0.7, size=6, legend=hue is not None)
    sns.pointplot(
        **kwargs,
        dodge=0.4 if hue is not None else False,
        errorbar=None,
        linestyle="none",
        markers="_",
        markersize=20,
        legend=False,
    )
    ax.set(ylabel=metric.replace("_", " "), title=title)
    if hue is not None:
        ax.legend(title=hue, loc="lower right")
    fig.tight_layout()
    return fig


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
def _kl(values: pd.Series) -> np.ndarray:
    return np.maximum(values.to_numpy(dtype=float), KL_FLOOR)


def explorer_figure(divergences: pd.DataFrame, epoch: int, sample: int, score: str = "nll_long") -> plt.Figure:
    """Three views of one epoch and one sample.

    left:   every sample at `epoch`: KL(short ‖ student) against KL(long ‖ student), flipped
            samples in orange, samples whose student disagrees with the given label as crosses,
            `sample` ringed;
    middle: the distribution of `score` at `epoch`, clean vs flipped samples;
    right:  `sample`'s two divergences (log scale) and `score` (right axis) over all epochs;
            the epochs where the student agreed with the given label are shaded; a line marks
            `epoch`.
    """
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.9))
    now = divergences[divergences.epoch == epoch]
    # -- left: all samples at this epoch --------------------------------------------------------
    ax = axes[0]
    both = now.dropna(subset=["kl_long", "kl_short"])
    for flipped, color, label in ((False, CLEAN, "clean"), (True, FLIPPED, "flipped")):
        for agrees, marker in ((True, "o"), (False, "x")):
            part = both[(both.flipped == flipped) & (both.student_agrees == agrees)]
            ax.scatter(
                _kl(part.kl_short),
                _kl(part.kl_long),
                s=8,
                c=color,
                marker=marker,
                alpha=0.5,
                lw=0.8,
                label=f"{label}, {'agrees' if agrees else 'disagrees'}",
            )
    chosen = both[both["index"] == sample]
    if len(chosen):
        ax.scatter(_kl(chosen.kl_short), _kl(chosen.kl_long), s=160, facecolors="none", edgecolors="black", lw=2)
    if len(both):
        ax.set(xscale="log", yscale="log")
    else:
        ax.text(0.5, 0.5, "no sample has both teachers yet", ha="center", va="center", transform=ax.transAxes)
    ax.set(
        xlabel="KL(short ‖ student)", ylabel="KL(long ‖ student)", title=f"epoch {epoch}: orange flipped, × disagrees"
    )
    ax.title.set_fontsize(11)
    # -- middle: the score's distribution, clean vs flipped ---------------------------------------
    ax = axes[1]
    values = now.dropna(subset=[score])
    if len(values):
        bins = np.histogram_bin_edges(values[score], bins=40)
        for flipped, color, label in ((False, CLEAN, "clean"), (True, FLIPPED, "flipped")):
            ax.hist(
                values.loc[values.flipped == flipped, score],
                bins=bins,
                color=color,
                alpha=0.6,
                density=True,
                label=label,
            )
        mine = values.loc[values["index"] == sample, score]
        if len(mine):
            ax.axvline(float(mine.iloc[0]), color="black", lw=1.5, label=f"sample {sample}")
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, f"no {score} yet at epoch {epoch}", ha="center", va="center", transform=ax.transAxes)
    ax.set(xlabel=score, ylabel="density", title=f"{score}: clean vs flipped")
    # -- right: one sample over epochs ----------------------------------------------------------
    ax = axes[2]
    mine = divergences[divergences["index"] == sample].sort_values("epoch")
    for column, style in (("kl_long", "-"), ("kl_short", "--")):
        ax.plot(mine.epoch, _kl(mine[column]), style, lw=1.6, label=column)
    if score not in ("kl_long", "kl_short"):  # on its own linear axis: a margin can be negative
        twin = ax.twinx()
        twin.plot(mine.epoch, mine[score], ":", color="#55A868", lw=2, label=score)
        twin.set_ylabel(score)
        twin.grid(False)
        twin.legend(fontsize=8, loc="lower right")
    for e in mine.epoch[mine.student_agrees.to_numpy(dtype=bool)]:
        ax.axvspan(e - 0.5, e + 0.5, color="#55A868", alpha=0.12, lw=0)
    ax.axvline(epoch, color="black", lw=1)
    if len(mine):
        row = mine.iloc[0]
        status = "flipped" if row.flipped else "clean"
        title = f"sample {sample}: label {row.label} (true {row.clean_label}, {status})"
    else:
        title = f"sample {sample}: not in the frame"
    ax.set(xlabel="epoch (green: student agrees with label)", ylabel="KL (log scale)", yscale="log", title=title)
    ax.title.set_fontsize(11)
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    return fig


def score_over_epochs_figure(divergences: pd.DataFrame, score: str = "nll_long", title: str = "") -> plt.Figure:
    """Median (line) and 25–75 % range (band) of `score` per epoch, clean vs flipped samples."""
    fig, ax = plt.subplots(figsize=(7, 3.8))
    for flipped, color, label in ((False, CLEAN, "clean"), (True, FLIPPED, "flipped")):
        per_epoch = divergences.loc[divergences.flipped == flipped].groupby("epoch")[score]
        q = per_epoch.quantile([0.25, 0.5, 0.75]).unstack().dropna()
        if len(q):
            ax.plot(q.index, q[0.5], color=color, lw=1.8, label=f"{label} (median)")
            ax.fill_between(q.index, q[0.25], q[0.75], color=color, alpha=0.25, lw=0)
    ax.set(xlabel="epoch", ylabel=score, title=title or f"{score}: clean vs flipped samples")
    if ax.lines:
        ax.legend(loc="best")
    else:
        ax.text(0.5, 0.5, f"no {score} in any epoch", ha="center", va="center", transform=ax.transAxes)
    fig.tight_layout()
    return fig


def auc_figure(auc: pd.DataFrame, title: str = "") -> plt.Figure:
    """ROC AUC of each mislabel score per epoch (from `diagnostics.mislabel_auc`); 0.5 = chance."""
    fig, ax = plt.subplots(figsize=(7, 3.8))
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
        ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


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
        xlabel=columns,
        ylabel=rows,
        title=title,
    )
    ax.grid(False)
    fig.tight_layout()
    return fig


def accuracy_cost_figure(table: pd.DataFrame, title: str = "") -> plt.Figure:
    """Accuracy against cost, one point per method (up and to the left is better).

    `table` is `experiments.table(summary)`: methods as the index, columns final_acc_mean,
    final_acc_std (the error bar, over seeds) and cost_vs_ce (seconds per epoch ÷ CE's, measured in
    the same run). With a `setting` column (several tables stacked) there is one panel per setting.
    """
    frame = table.reset_index()
    settings = list(frame["setting"].unique()) if "setting" in frame else [title]
    colours = dict(zip(frame["method"].unique(), sns.color_palette("tab10", frame["method"].nunique())))
    fig, axes = plt.subplots(1, len(settings), figsize=(5.5 * len(settings), 4.2), squeeze=False)
    for ax, setting in zip(axes[0], settings):
        part = frame[frame["setting"] == setting] if "setting" in frame else frame
        ax.axvline(1.0, color="0.6", lw=1, ls="--")  # CE's cost
        for row in part.itertuples():
            ax.errorbar(
                row.cost_vs_ce,
                row.final_acc_mean,
                yerr=row.final_acc_std,
                fmt="o",
                color=colours[row.method],
                capsize=3,
                ms=6,
            )
            ax.annotate(
                row.method, (row.cost_vs_ce, row.final_acc_mean), xytext=(5, 3), textcoords="offset points", fontsize=8
            )
        ax.set(xlabel="seconds per epoch ÷ CE's", ylabel="final test accuracy", title=setting)
    fig.tight_layout()
    return fig
