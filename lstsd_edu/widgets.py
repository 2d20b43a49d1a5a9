"""Interactive views: ipywidgets controls wired to the pure figures of `plots.py`.

Every view is the same small machine:

    controls (view.sliders)  --value changes-->  view.render(**values)  ->  (figure, html)
                                                 |                          |
                                     an Output area shows the figure,   an HTML widget the table

`render` calls a function of `plots.py` (and, for the playground, the trainer); the view keeps
the last figure (`view.figure`), the last result (`view.result`) and how long the update took
(`view.seconds`), so a test or a notebook cell can move a slider from Python

    view.sliders["lag"].value = 7        # observers fire: retrain if needed, redraw
    view.figure, view.result, view.seconds

and check what changed. Sliders use `continuous_update=False`: a view updates when the slider is
released, not on every pixel of a drag. Figures are drawn with the inline backend (no ipympl) and
closed after display, so nothing is shown twice.

    ScheduleView()                       01: the buffer's ring of slots for a lag and a mode
    DivergenceExplorer(divergences)      04: per-sample divergences, epoch slider, sample choice
    Playground(config)                   05: retrain LSTSD live against the CE baseline
"""

from __future__ import annotations

import time
from dataclasses import replace
from functools import lru_cache

import ipywidgets as widgets
import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import clear_output, display

from .buffer import buffer_bytes
from .data import Dataset, load_dataset
from .diagnostics import SCORES, mislabel_auc, teacher_schedule
from .errors import ConfigError
from .experiments import Config, selection, train
from .plots import explorer_figure, schedule_figure, training_figure

WIDE = widgets.Layout(width="320px")
STYLE = {"description_width": "110px"}


class View:
    """Controls, an HTML table and an Output area holding the figure they drew.

    Subclasses define `render(**values) -> (figure or None, html)`; None keeps the old figure
    (e.g. when the settings are invalid and the table explains why).
    """

    def __init__(self, sliders: dict[str, widgets.ValueWidget]) -> None:
        self.sliders = sliders
        self.table = widgets.HTML()
        self.output = widgets.Output()
        self.figure: plt.Figure | None = None
        self.result = None
        self.seconds: float | None = None  # wall time of the last update, compute + draw
        controls = widgets.HBox(list(sliders.values()), layout=widgets.Layout(flex_flow="row wrap"))
        self.widget = widgets.VBox([controls, self.table, self.output])
        for control in sliders.values():
            control.observe(self._changed, names="value")
        self.update()

    def values(self) -> dict:
        return {name: control.value for name, control in self.sliders.items()}

    def render(self, **values) -> tuple[plt.Figure | None, str]:
        raise NotImplementedError

    def update(self) -> None:
        """Render with the controls' current values and show the result."""
        start = time.perf_counter()
        figure, html = self.render(**self.values())  # outside `with output`: errors propagate
        self.table.value = html
        if figure is not None:
            with self.output:
                clear_output(wait=True)
                display(figure)
            plt.close(figure)  # shown once, inside the Output; the object stays readable
            self.figure = figure
        self.seconds = time.perf_counter() - start

    def _changed(self, change) -> None:
        self.update()

    def _ipython_display_(self) -> None:
        display(self.widget)


def _slider(kind, description: str, value, low, high, step) -> widgets.ValueWidget:
    return kind(
        value=value,
        min=low,
        max=high,
        step=step,
        description=description,
        continuous_update=False,
        layout=WIDE,
        style=STYLE,
    )


def _html_table(frame: pd.DataFrame, caption: str = "") -> str:
    head = f"<b>{caption}</b>" if caption else ""
    return head + frame.to_html(index=False, float_format=lambda v: f"{v:.3f}", border=0)


# ---------------------------------------------------------------------------------------------
# 01 — the ring of slots
# ---------------------------------------------------------------------------------------------
class ScheduleView(View):
    """The buffer's slots over `epochs` epochs for a lag and a long-term mode, with its memory
    for a training set of `num_samples` × `num_classes` (fp16 dense records)."""

    def __init__(
        self, lag: int = 3, mode: str = "sliding", epochs: int = 12, num_samples: int = 4000, num_classes: int = 10
    ) -> None:
        self.epochs, self.num_samples, self.num_classes = epochs, num_samples, num_classes
        super().__init__(
            {
                "lag": _slider(widgets.IntSlider, "lag", lag, 1, 8, 1),
                "mode": widgets.Dropdown(
                    options=["sliding", "phase"], value=mode, description="mode", layout=WIDE, style=STYLE
                ),
            }
        )

    def render(self, lag: int, mode: str) -> tuple[plt.Figure, str]:
        schedule = teacher_schedule(lag, mode, self.epochs)
        slots = int(schedule.slot.max()) + 1
        self.result = schedule
        memory = buffer_bytes(self.num_samples, self.num_classes, slots)
        html = (
            f"{mode}, lag {lag}: <b>{slots} slots</b>; for {self.num_samples:,} samples × "
            f"{self.num_classes} classes that is <b>{memory:,} bytes</b>"
        )
        return schedule_figure(schedule, title=f"{mode} mode, lag {lag}"), html


# ---------------------------------------------------------------------------------------------
# 04 — the per-sample divergence explorer
# ---------------------------------------------------------------------------------------------
class DivergenceExplorer(View):
    """Epoch slider, sample number and score over `Trainer.divergences` (see `explorer_figure`).

    The table shows the chosen sample at the chosen epoch, and each score's mislabel ROC AUC at
    that epoch.
    """

    def __init__(
        self, divergences: pd.DataFrame, sample: int | None = None, epoch: int | None = None, score: str = "nll_long"
    ) -> None:
        self.divergences = divergences
        self.auc = mislabel_auc(divergences)
        epochs = sorted(divergences.epoch.unique())
        flipped = divergences.loc[divergences.flipped, "index"]
        if sample is None:  # start on a flipped sample: the interesting kind
            sample = int(flipped.iloc[0]) if len(flipped) else 0
        scores = [s for s in SCORES if s in divergences.columns]
        super().__init__(
            {
                "epoch": _slider(widgets.IntSlider, "epoch", epoch or epochs[-1], epochs[0], epochs[-1], 1),
                "sample": widgets.BoundedIntText(
                    value=sample,
                    min=0,
                    max=int(divergences["index"].max()),
                    description="sample",
                    continuous_update=False,
                    layout=WIDE,
                    style=STYLE,
                ),
                "score": widgets.Dropdown(options=scores, value=score, description="score", layout=WIDE, style=STYLE),
            }
        )

    def render(self, epoch: int, sample: int, score: str) -> tuple[plt.Figure, str]:
        frame = self.divergences
        row = frame[(frame.epoch == epoch) & (frame["index"] == sample)]
        columns = ["label", "clean_label", "flipped", *[s for s in SCORES if s in frame.columns], "student_agrees"]
        self.result = row[["epoch", "index", *columns]]
        auc = self.auc[self.auc.epoch == epoch][["score", "auc"]].set_index("score").T
        html = _html_table(self.result, f"sample {sample} at epoch {epoch}") + _html_table(
            auc, "mislabel ROC AUC at this epoch"
        )
        return explorer_figure(frame, epoch, sample, score), html


# ---------------------------------------------------------------------------------------------
# 05 — the playground
# ---------------------------------------------------------------------------------------------
@lru_cache(maxsize=8)
def _dataset(name: str, noise: float, noise_kind: str, val_fraction: float) -> Dataset:
    return load_dataset(name, noise, noise_kind, val_fraction=val_fraction)


@lru_cache(maxsize=512)
def train_history(method: str, config: Config, seed: int = 0) -> pd.DataFrame:
    """History of one run, cached by (method, config, seed): a setting seen before is instant.

    `Config` is a frozen dataclass, so it is its own cache key.
    """
    data = _dataset(config.dataset, config.noise, config.noise_kind, config.val_fraction)
    return train(method, config, seed, data=data).history.assign(method=method, seed=seed)


def _summary(history: pd.DataFrame) -> dict:
    chosen = selection(history)
    return dict(
        method=history.method.iloc[0],
        selected_test_acc=chosen["selected_test_acc"],
        final_test_acc=chosen["final_test_acc"],
        final_train_acc=history.train_acc.iloc[-1],
    )


class Playground(View):
    """Sliders for lag, long weight, short weight, temperature and noise rate; each change trains
    LSTSD on `config` with those settings (or finds the run in the cache) and draws it against
    plain CE trained on the same data.

    `result` is a one-row-per-method frame (test accuracy at the epoch chosen on validation and
    at the last epoch, final train accuracy);
    `retrained` says whether the last update had to train. `sweep` fills the same cache.
    """

    def __init__(self, config: Config, seed: int = 0) -> None:
        self.config, self.seed = config.validate(), seed
        self.retrained = False
        super().__init__(
            {
                # up to the run length or twice the default lag, whichever is longer (a lag at or past
                # the run length means no long-term teacher ever appears: worth seeing once)
                "lag": _slider(widgets.IntSlider, "lag", config.lag, 1, max(config.epochs, 2 * config.lag), 1),
                "w_long": _slider(widgets.FloatSlider, "long weight", config.w_long, 0.0, 1.0, 0.05),
                "w_short": _slider(widgets.FloatSlider, "short weight", config.w_short, 0.0, 1.0, 0.05),
                "temperature": _slider(widgets.FloatSlider, "temperature", config.temperature, 0.5, 8.0, 0.5),
                "noise": _slider(widgets.FloatSlider, "noise rate", config.noise, 0.0, 0.8, 0.05),
            }
        )

    def settings(self, **values) -> Config:
        """`config` with the sliders' values (validated: raises ConfigError)."""
        return replace(self.config, **values).validate()

    def baseline(self, config: Config) -> Config:
        """The CE run for `config`: LSTSD's own settings reset, so that all share one cache entry."""
        own = ("lag", "w_long", "w_short", "temperature", "long_mode", "ramp")
        return replace(config, **{name: getattr(self.config, name) for name in own})

    def histories(self, config: Config) -> pd.DataFrame:
        before = train_history.cache_info().misses
        runs = [train_history("ce", self.baseline(config), self.seed), train_history("lstsd", config, self.seed)]
        self.retrained = train_history.cache_info().misses > before
        return pd.concat(runs, ignore_index=True)

    def render(self, **values) -> tuple[plt.Figure | None, str]:
        values = {k: round(v, 4) if isinstance(v, float) else v for k, v in values.items()}
        try:
            config = self.settings(**values)
        except ConfigError as error:
            return None, f"<b style='color:#b00'>Not trained: {error}</b>"
        history = self.histories(config)
        self.result = pd.DataFrame([_summary(h) for _, h in history.groupby("method", sort=False)])
        setting = (
            f"lag {config.lag}, w_long {config.w_long:g}, w_short {config.w_short:g}, "
            f"τ {config.temperature:g}, noise {config.noise:g}"
        )
        gain = self.result.final_test_acc.iloc[1] - self.result.final_test_acc.iloc[0]
        html = _html_table(self.result, f"{setting}: LSTSD − CE, final test accuracy {gain:+.3f}")
        return training_figure(history, f"{setting} ({config.epochs} epochs)"), html

    def sweep(self, lags: list[int], long_weights: list[float], **fixed) -> pd.DataFrame:
        """Train LSTSD on the lag × long-weight grid (other settings from `config`, or `fixed`).

        Returns one row per cell: lag, w_long, final_test_acc, selected_test_acc, and the CE
        baseline's final test accuracy in `ce_final_test_acc` (the same for every cell). Cells
        whose weights sum above 1 are left out.
        """
        base = replace(self.config, **fixed)
        ce = _summary(train_history("ce", self.baseline(base), self.seed))
        rows = []
        for lag in lags:
            for w_long in long_weights:
                try:
                    config = replace(base, lag=lag, w_long=w_long).validate()
                except ConfigError:
                    continue
                summary = _summary(train_history("lstsd", config, self.seed))
                rows.append(
                    dict(
                        lag=lag,
                        w_long=w_long,
                        final_test_acc=summary["final_test_acc"],
                        selected_test_acc=summary["selected_test_acc"],
                        ce_final_test_acc=ce["final_test_acc"],
                    )
                )
        return pd.DataFrame(rows)
