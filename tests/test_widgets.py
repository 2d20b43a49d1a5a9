"""Widget views driven from Python, as a learner's slider would drive them.

Each test moves a control (`view.sliders[name].value = …`, which fires the same observers a
browser does) and checks that the figure and the result changed, by comparing the pixels the Agg
backend draws for the old and the new figure.
"""

import hashlib

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from test_plots import divergence_frame

from lstsd_edu.errors import ConfigError
from lstsd_edu.experiments import preset
from lstsd_edu.widgets import (
    FAST_PLAYGROUND_TRAIN_SIZE,
    PLAYGROUND_TRAIN_SIZE,
    DivergenceExplorer,
    Playground,
    ScheduleView,
    playground_config,
    playground_train_size,
    runs_trained,
    train_history,
)


def pixels(figure: plt.Figure) -> str:
    """A fingerprint of what the figure looks like."""
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return hashlib.sha256(bytes(canvas.buffer_rgba())).hexdigest()


def test_every_slider_updates_only_when_released():
    views = [ScheduleView(), DivergenceExplorer(divergence_frame())]
    for view in views:
        for control in view.sliders.values():
            if hasattr(control, "continuous_update"):
                assert control.continuous_update is False


def test_schedule_view_redraws_when_lag_or_mode_moves():
    view = ScheduleView(lag=3, mode="sliding", epochs=8)
    before = pixels(view.figure)
    assert "4 slots" in view.table.value
    view.sliders["lag"].value = 5
    assert pixels(view.figure) != before
    assert "6 slots" in view.table.value and view.result.slot.nunique() == 6
    view.sliders["mode"].value = "phase"
    assert "3 slots" in view.table.value
    assert view.sliders["lag"].description == "lag"


def test_divergence_explorer_follows_epoch_sample_and_score():
    d = divergence_frame(epochs=6, lag=2)
    view = DivergenceExplorer(d)
    assert view.sliders["sample"].value == 0  # starts on the first flipped sample
    assert view.sliders["epoch"].value == 6
    before = pixels(view.figure)
    view.sliders["epoch"].value = 3
    assert pixels(view.figure) != before
    assert view.result.epoch.tolist() == [3] and "at epoch 3" in view.table.value
    before = pixels(view.figure)
    view.sliders["sample"].value = 5
    assert pixels(view.figure) != before
    assert view.result["index"].tolist() == [5]
    view.sliders["score"].value = "margin"
    assert "margin" in view.figure.axes[0].get_title() and "margin" in view.figure.axes[1].get_title()
    assert view.sliders["epoch"].description == "epoch"
    assert view.seconds is not None and view.seconds >= 0


@pytest.fixture(scope="module")
def small_config():
    # two epochs of a narrow model: each training run takes a fraction of a second on one
    # thread (a tiny model gains nothing from more, and a shared CPU makes them contend)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield preset("mnist1d", noise=0.3, epochs=3, width=4, lag=1, ramp=2)
    torch.set_num_threads(threads)


def test_playground_retrains_when_lag_moves(small_config):
    view = Playground(small_config)
    assert list(view.result.method) == ["ce", "lstsd"]
    assert all(control.continuous_update is False for control in view.sliders.values())
    assert list(view.sliders) == ["lag", "w_long", "w_short", "temperature", "ramp", "epochs", "noise"]
    before_pixels, before_result = pixels(view.figure), view.result.copy()
    view.sliders["lag"].value = 2
    assert view.retrained
    assert pixels(view.figure) != before_pixels
    assert "lag 2" in view.figure.texts[0].get_text()  # the suptitle names the setting
    ce_before, ce_after = before_result.iloc[0], view.result.iloc[0]
    assert ce_after.final_test_acc == ce_before.final_test_acc  # the baseline is not retrained
    assert "LSTSD − CE" in view.table.value and "lag 2," in view.table.value
    # back to a setting already seen: served from the cache, same numbers
    view.sliders["lag"].value = 1
    assert not view.retrained
    assert view.result.equals(before_result)


def test_playground_noise_slider_changes_the_baseline_too(small_config):
    view = Playground(small_config)
    ce_before = view.result.final_test_acc.iloc[0]
    view.sliders["noise"].value = 0.0
    assert view.result.final_test_acc.iloc[0] != ce_before
    assert view.sliders["noise"].description == "noise rate"


def test_playground_reports_invalid_weights_without_redrawing(small_config):
    view = Playground(small_config)
    figure = view.figure
    view.sliders["w_long"].value = 0.9  # 0.9 + 0.4 > 1
    assert "w_long + w_short must be at most 1" in view.table.value
    assert view.figure is figure


def test_playground_sweep_shares_the_cache(small_config):
    view = Playground(small_config)
    grid = view.sweep([1, 2], [0.2, 0.4])
    assert grid[["lag", "w_long"]].values.tolist() == [[1, 0.2], [1, 0.4], [2, 0.2], [2, 0.4]]
    assert grid.ce_final_test_acc.nunique() == 1
    runs = runs_trained()
    view.sliders["w_long"].value = 0.2
    view.sliders["lag"].value = 2
    assert runs_trained() == runs and not view.retrained
    row = grid[(grid.lag == 2) & (grid.w_long == 0.2)].iloc[0]
    assert view.result.final_test_acc.iloc[1] == row.final_test_acc


def test_playground_draws_the_mechanism_with_the_milestones(small_config):
    view = Playground(small_config)
    share, _ = view.figure.axes
    assert share.get_ylabel() == "share of flipped training samples"
    labels = {line.get_label() for line in share.lines}
    assert {"ce: given label", "lstsd: given label", "ce: true label", "lstsd: true label"} <= labels
    milestones = [line.get_xdata()[0] for line in share.lines if line.get_label() == "_milestone"]
    assert milestones == [2, 2, 2]  # lag 1: both teachers arrive at epoch 2, and ramp 2 ends there
    assert {t.get_text() for t in share.texts} == {"short-term teacher", "ramp ends", "long-term teacher"}
    assert list(view.result.columns[:4]) == ["method", "selected_epoch", "selected_test_acc", "final_test_acc"]
    assert view.result.final_flipped_as_given.between(0, 1).all()


def test_epochs_slider_moves_the_limits_of_lag_and_ramp(small_config):
    view = Playground(small_config)
    assert view.sliders["lag"].max == 2 and view.sliders["ramp"].max == 3  # lag below the run length
    view.sliders["lag"].value = 2
    updates = []
    view.update = lambda: updates.append(view.values())  # count the updates one change causes
    view.sliders["epochs"].value = 2
    assert view.sliders["lag"].max == 1 and view.sliders["lag"].value == 1  # pulled below the epochs
    assert view.sliders["ramp"].max == 2 and view.sliders["ramp"].value == 2
    assert updates == [dict(view.values())]  # one update, with the new lag: one training, not two
    view.sliders["epochs"].value = 5
    assert view.sliders["lag"].max == 4 and view.sliders["lag"].value == 1


def test_playground_epochs_slider_retrains_both(small_config):
    view = Playground(small_config)
    runs = runs_trained()
    view.sliders["epochs"].value = 4
    assert view.retrained and runs_trained() == runs + 2  # CE and LSTSD
    assert all(len(line.get_xdata()) == 4 for line in view.figure.axes[1].lines if line.get_label() in ("ce", "lstsd"))


def test_playground_setting_lives_in_the_library(monkeypatch):
    monkeypatch.delenv("LSTSD_EDU_FAST", raising=False)
    config = playground_config()
    assert (config.dataset, config.noise, config.epochs, config.lag, config.ramp) == ("mnist1d", 0.3, 30, 8, 8)
    assert config.lag < config.epochs and playground_train_size() == PLAYGROUND_TRAIN_SIZE == 2000
    monkeypatch.setenv("LSTSD_EDU_FAST", "1")
    fast = playground_config()
    assert fast.epochs <= 4 and fast.lag < fast.epochs  # the fast mode's few epochs, teachers included
    assert playground_train_size() == FAST_PLAYGROUND_TRAIN_SIZE < PLAYGROUND_TRAIN_SIZE  # and fewer samples


def test_playground_without_config_uses_its_own_setting(monkeypatch):
    monkeypatch.setenv("LSTSD_EDU_FAST", "1")  # a few epochs: the test stays quick
    torch.set_num_threads(1)
    view = Playground()
    assert view.config == playground_config() and view.train_size == playground_train_size() == 500
    assert "500 training samples" in view.figure.texts[0].get_text()
    assert Playground(train_size=600).train_size == 600  # its own setting on another number of samples


def test_seed_map_compares_each_seed_with_its_own_baseline(small_config):
    from lstsd_edu.plots import seed_map_figure

    view = Playground(small_config, train_size=600)
    cells = view.seed_map([1, 2], [0.2, 0.6], seeds=[0, 1, 2], progress=False)  # 0.6 + 0.4 > 1: left out
    assert cells[["lag", "w_long"]].values.tolist() == [[1, 0.2], [2, 0.2]]
    assert (cells.seeds == 3).all()
    config = view.settings(lag=2, w_long=0.2)
    runs = runs_trained()
    gains = [  # each seed's LSTSD run against the CE run of the same seed, both from the cache
        _selected(train_history("lstsd", config, seed, 600))
        - _selected(train_history("ce", view.baseline(config), seed, 600))
        for seed in (0, 1, 2)
    ]
    assert runs_trained() == runs
    row = cells[cells.lag == 2].iloc[0]
    assert row.gain == pytest.approx(np.mean(gains)) and row.spread == pytest.approx(np.std(gains, ddof=1))
    fig = seed_map_figure(cells)
    assert len(fig.axes[0].texts) == 2
    with pytest.raises(ConfigError, match="seeds"):
        view.seed_map([1], [0.2], seeds=[0])
    with pytest.raises(ConfigError, match="weight"):
        view.seed_map([1], [0.2], weight="lag")


def _selected(history):
    from lstsd_edu.experiments import selection

    return selection(history)["selected_test_acc"]


def test_every_view_leaves_a_static_picture(small_config, tmp_path):
    """No kernel, no front end: the picture is rendered from the view's figure alone."""
    views = {
        "schedule": ScheduleView(),
        "explorer": DivergenceExplorer(divergence_frame(), milestones={"short": 2, "long": 3}),
        "playground": Playground(small_config),
    }
    for name, view in views.items():
        image = view.snapshot(tmp_path / f"{name}.png")
        assert image.format == "png" and image.data[:8] == b"\x89PNG\r\n\x1a\n"
        assert (tmp_path / f"{name}.png").read_bytes() == image.data
        picture = plt.imread(tmp_path / f"{name}.png")
        assert picture.shape[0] > 100 and picture.shape[1] > 300
    # the picture follows the controls
    view = views["schedule"]
    before = view.snapshot().data
    view.sliders["lag"].value = 6
    assert view.snapshot().data != before


@pytest.mark.parametrize(
    "build, parameter",
    [
        (lambda: ScheduleView(lag=0), "lag"),
        (lambda: ScheduleView(mode="cyclic"), "mode"),
        (lambda: ScheduleView(epochs=0), "epochs"),
        (lambda: ScheduleView(num_samples=-1), "num_samples"),
        (lambda: ScheduleView(num_classes=1), "num_classes"),
        (lambda: DivergenceExplorer([1, 2]), "divergences"),
        (lambda: DivergenceExplorer(divergence_frame().iloc[:0]), "divergences"),
        (lambda: DivergenceExplorer(divergence_frame(), score="loss"), "score"),
        (lambda: DivergenceExplorer(divergence_frame(), sample=10**6), "sample"),
        (lambda: DivergenceExplorer(divergence_frame(), epoch=999), "epoch"),
        (lambda: Playground({"lag": 3}), "config"),
        (lambda: Playground(preset("digits"), seed=-1), "seed"),
        (lambda: Playground(preset("digits"), train_size=0), "train_size"),
    ],
)
def test_bad_constructor_input_is_a_config_error_naming_the_parameter(build, parameter):
    from lstsd_edu.errors import ConfigError

    with pytest.raises(ConfigError, match=parameter):
        build()


def test_schedule_view_takes_a_lag_beyond_its_default_slider_range():
    assert ScheduleView(lag=12).sliders["lag"].value == 12


def test_runs_trained_side_by_side_equal_runs_trained_one_after_the_other(small_config, monkeypatch):
    from lstsd_edu import widgets

    tasks = [("ce", small_config, 7, 300), ("lstsd", small_config, 7, 300)]
    before = runs_trained()
    together = widgets.train_histories(tasks)  # the second one in the helper process, where there are 2 cores
    assert runs_trained() == before + 2 and widgets.train_histories(tasks)[1] is together[1]  # kept
    monkeypatch.setattr(widgets, "_HISTORIES", {})
    monkeypatch.setattr(widgets, "_helper", lambda: None)  # as on a one-core machine
    alone = widgets.train_histories(tasks)
    for mine, theirs in zip(together, alone):
        pd.testing.assert_frame_equal(mine.drop(columns="seconds"), theirs.drop(columns="seconds"))


def test_a_helper_that_dies_is_replaced_and_its_run_trained_here(small_config, monkeypatch):
    from concurrent.futures import Future
    from concurrent.futures.process import BrokenProcessPool

    from lstsd_edu import widgets

    class Dead:
        def submit(self, *args):
            future = Future()
            future.set_exception(BrokenProcessPool("killed"))
            return future

    monkeypatch.setattr(widgets, "_HISTORIES", {})
    monkeypatch.setattr(widgets, "_HELPER", Dead())
    tasks = [("ce", small_config, 9, 300), ("lstsd", small_config, 9, 300)]
    histories = widgets.train_histories(tasks)
    assert [h.method.iloc[0] for h in histories] == ["ce", "lstsd"] and widgets._HELPER is None
