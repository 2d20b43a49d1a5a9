"""Figures: pure functions from DataFrames to matplotlib Figures (seaborn style).

Nothing here trains or reads files; every function takes the tidy frames the trainer, the
experiments and the diagnostics produce, so the same figure appears in the CLI, the notebooks and
the tests (which run them under the Agg backend).
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

sns.set_theme(style="whitegrid", context="notebook")


def comparison_figure(history: pd.DataFrame, metric: str = "test_acc", title: str = "") -> plt.Figure:
    """`metric` over epochs per method: the mean over seeds as a line, min–max over seeds as a band.

    `history` has columns method, seed, epoch and `metric` (as written by `compare`).
    """
    fig, ax = plt.subplots(figsize=(7, 4))
    for method, frame in history.groupby("method", sort=False):
        per_epoch = frame.groupby("epoch")[metric]
        mean, low, high = per_epoch.mean(), per_epoch.min(), per_epoch.max()
        line, = ax.plot(mean.index, mean.values, label=method, lw=1.8)
        ax.fill_between(mean.index, low.values, high.values, color=line.get_color(), alpha=0.2, lw=0)
    ax.set(xlabel="epoch", ylabel=metric.replace("_", " "), title=title)
    ax.legend(title="method", loc="lower right")
    fig.tight_layout()
    return fig
