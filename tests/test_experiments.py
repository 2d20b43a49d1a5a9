"""lstsd_edu.experiments: the table over seeds leaves diverged runs out and counts them; a sweep
may vary the data settings, each run then training on its own config's data."""

import math

import pandas as pd

from lstsd_edu.experiments import preset, sweep, table


def summary(rows):
    columns = ["method", "seed", "selected_test_acc", "final_test_acc", "selected_val_acc", "diverged"]
    frame = pd.DataFrame(rows, columns=columns)
    return frame.assign(seconds_per_epoch=1.0, buffer_bytes=0)


def test_diverged_runs_are_left_out_of_the_means_and_counted():
    t = table(
        summary(
            [
                ("ce", 0, 0.8, 0.7, 0.75, False),
                ("ce", 1, 0.6, 0.5, 0.55, False),
                ("ce", 2, 0.1, 0.1, 0.10, True),  # a number it measured, but it diverged
                ("lstsd", 0, 0.9, 0.9, 0.9, True),
                ("lstsd", 1, math.nan, math.nan, math.nan, True),
            ]
        )
    )
    assert t.loc["ce", "selected_acc_mean"] == 0.7 and t.loc["ce", "final_acc_mean"] == 0.6
    assert t.loc["ce", "diverged"] == 1 and t.loc["ce", "seeds"] == 3
    assert abs(t.loc["ce", "selected_acc_std"] - 0.1414213562) < 1e-9  # over the two that did not diverge
    assert t.loc["lstsd", "diverged"] == 2
    assert t.loc[["lstsd"], ["selected_acc_mean", "selected_acc_std", "final_acc_std"]].isna().all(axis=None)


def test_a_table_of_summaries_without_the_diverged_column_still_works():
    frame = summary([("ce", 0, 0.8, 0.7, 0.75, False)]).drop(columns="diverged")
    t = table(frame)
    assert t.loc["ce", "diverged"] == 0 and t.loc["ce", "selected_acc_std"] == 0.0


def test_a_sweep_over_noise_trains_each_point_on_its_own_data():
    config = preset("digits", epochs=1, width=4)
    grid = sweep("ce", config, {"noise": [0.0, 0.4]}, [0], progress=False)
    assert grid.noise.tolist() == [0.0, 0.4]
    assert grid.selected_val_acc.iloc[0] != grid.selected_val_acc.iloc[1]  # other labels, other numbers


def test_an_override_wins_over_a_tuned_setting():
    tuned = preset("mnist1d", "ce", noise=0.3)
    config = preset("mnist1d", "ce", noise=0.3, lr=0.1, weight_decay=0.02)
    assert (config.lr, config.weight_decay) == (0.1, 0.02)
    assert tuned.lr != 0.1  # a tuned value was there to be overridden
    assert preset("mnist1d", "lstsd", lag=5).w_long == preset("mnist1d", "lstsd").w_long  # the rest stays tuned
