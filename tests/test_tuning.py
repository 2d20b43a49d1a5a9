"""lstsd_edu.tuning: the protocol (no test label in the search, the same budget for every method, runs kept
and read back), and a result written by `lstsd-edu tune` reads back as the result it was."""

from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from scipy import stats

from lstsd_edu import tuning
from lstsd_edu.errors import ConfigError
from lstsd_edu.experiments import load_data, preset
from lstsd_edu.runs import write_csv
from lstsd_edu.tuning import (
    by_method,
    candidates,
    differences,
    fresh_table,
    load,
    paired_differences,
    report,
    tune,
)

COMMITTED = Path(__file__).resolve().parent.parent / "benchmarks" / "results" / "tuning_mnist1d"


def test_a_written_result_loads_back_as_it_was(tmp_path):
    base = preset("mnist1d", noise=0.3, epochs=2)
    result = tune(["ce", "ls"], base, trials=2, tuning_seeds=(0,), fresh_seeds=(5, 6), progress=False)
    write_csv(result.trials, tmp_path / "trials.csv")  # what `lstsd-edu tune` writes
    write_csv(result.fresh, tmp_path / "fresh.csv")
    loaded = load(tmp_path)
    assert loaded.selected == result.selected and loaded.base == result.base
    assert (loaded.tuning_seeds, loaded.fresh_seeds) == ((0,), (5, 6))
    assert fresh_table(loaded).equals(fresh_table(result))
    assert report(loaded) == report(result)


def test_the_committed_tuning_loads_to_its_own_report():
    text = (COMMITTED / "tuning.md").read_text(encoding="utf-8")
    command = text.split("Command: `")[1].split("`")[0]
    result = load(COMMITTED)
    assert report(result, command) == text
    assert differences(result).loc["ce", "verdict"] == "better"


def test_a_folder_without_the_files_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"trials\.csv and fresh\.csv"):
        load(tmp_path)


def test_paired_differences_by_hand():
    rows = [("lstsd", 0, 0.90), ("lstsd", 1, 0.92), ("lstsd", 2, 0.94), ("ce", 0, 0.80), ("ce", 1, 0.83)]
    rows += [("ce", 2, 0.84), ("ls", 0, 0.91), ("ls", 1, 0.91), ("ls", 2, 0.95)]
    summary = pd.DataFrame(rows, columns=["method", "seed", "selected_test_acc"])
    gaps = [0.10, 0.09, 0.10]  # lstsd − ce, seed by seed
    half = stats.t.ppf(0.975, 2) * pd.Series(gaps).std() / 3**0.5
    out = paired_differences(summary)
    assert list(out.index) == ["ce", "ls"]  # in the order they first appear
    assert out.loc["ce", "difference"] == pytest.approx(sum(gaps) / 3)
    assert out.loc["ce", "low"] == pytest.approx(sum(gaps) / 3 - half)
    assert out.loc["ce", "verdict"] == "better" and out.loc["ls", "verdict"] == "tie"  # ls: −0.01, 0.01, −0.01
    assert by_method(summary).loc["ce", "mean"] == pytest.approx(0.82333333)
    with pytest.raises(ConfigError, match="reference must be one of the methods"):
        paired_differences(summary, reference="elr")


SMALL = dict(noise=0.3, epochs=2, width=4)  # a tuning small enough for a test: 2 epochs, a narrow model


def test_the_search_never_sees_a_test_label(monkeypatch):
    """The search trains on data whose test split is gone, so it cannot read a test label; only the
    fresh-seed runs get it. And the search's scores and choices do not change when every test label
    is changed: nothing chosen depends on them."""
    base = preset("mnist1d", **SMALL)
    data = load_data(base)
    seen = []
    real_execute = tuning.execute

    def recording(tasks, data, **kwargs):
        seen.append(data.test)
        return real_execute(tasks, data, **kwargs)

    monkeypatch.setattr(tuning, "execute", recording)
    result = tune(["ce", "lstsd"], base, trials=2, fresh_seeds=(5,), data=data, progress=False)
    assert seen[0] is None and seen[1] is data.test  # the search, then the fresh seeds

    relabelled = replace(data, test=replace(data.test, y=(data.test.y + 1) % data.num_classes))
    other = tune(["ce", "lstsd"], base, trials=2, fresh_seeds=(5,), data=relabelled, progress=False)
    pd.testing.assert_frame_equal(result.trials, other.trials)
    assert result.selected == other.selected
    assert not result.fresh.selected_test_acc.equals(other.fresh.selected_test_acc)  # only here are they read


def test_every_method_gets_the_same_number_of_trials_the_starting_point_first():
    base = preset("mnist1d", **SMALL)
    for method in ("ce", "lstsd", "elr"):
        drawn = candidates(method, base, trials=5)
        assert len(drawn) == 5 and drawn[0] == base.validate()
        assert drawn == candidates(method, base, trials=5)  # the same draws every time
        assert drawn[:3] == candidates(method, base, trials=3)  # a smaller budget is a prefix
        assert len({repr(c) for c in drawn}) == 5


def test_a_tuning_run_again_reads_every_run_from_its_store(tmp_path):
    base = preset("mnist1d", **SMALL)
    first = tune(["ce", "lstsd"], base, trials=2, fresh_seeds=(5, 6), store=tmp_path, progress=False)
    kept = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.json")}
    assert len(kept) == 2 * 2 + 2 * 2  # methods × trials, then methods × fresh seeds
    again = tune(["ce", "lstsd"], base, trials=2, fresh_seeds=(5, 6), store=tmp_path, progress=False)
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.json")} == kept  # nothing trained again
    pd.testing.assert_frame_equal(first.trials, again.trials)
    pd.testing.assert_frame_equal(first.fresh, again.fresh)
