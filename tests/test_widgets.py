"""Widget views driven from Python, as a learner's slider would drive them.

Each test moves a control (`view.sliders[name].value = …`, which fires the same observers a
browser does) and checks that the figure and the result changed, by comparing the pixels the Agg
backend draws for the old and the new figure.
"""

import hashlib

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from test_plots import divergence_frame

from lstsd_edu.experiments import preset
from lstsd_edu.widgets import (
    DivergenceExplorer,
    Playground,
    ScheduleView,
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
    assert "margin" in view.figure.axes[1].get_title()
    assert view.sliders["epoch"].description == "epoch"
    assert view.seconds is not None and view.seconds >= 0


@pytest.fixture(scope="module")
def small_config():
    # two epochs of a narrow model: each training run takes a fraction of a second on one
    # thread (a tiny model gains nothing from more, and a shared CPU makes them contend)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield preset("mnist1d", noise=0.3, epochs=2, width=4, lag=1)
    torch.set_num_threads(threads)


def test_playground_retrains_when_lag_moves(small_config):
    view = Playground(small_config)
    assert list(view.result.method) == ["ce", "lstsd"]
    assert all(control.continuous_update is False for control in view.sliders.values())
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
    misses = train_history.cache_info().misses
    view.sliders["w_long"].value = 0.2
    view.sliders["lag"].value = 2
    assert train_history.cache_info().misses == misses and not view.retrained
    row = grid[(grid.lag == 2) & (grid.w_long == 0.2)].iloc[0]
    assert view.result.final_test_acc.iloc[1] == row.final_test_acc
