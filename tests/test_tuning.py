"""lstsd_edu.tuning: a result written by `lstsd-edu tune` reads back as the result it was."""

from pathlib import Path

import pytest

from lstsd_edu.errors import ConfigError
from lstsd_edu.experiments import preset
from lstsd_edu.runs import write_csv
from lstsd_edu.tuning import differences, fresh_table, load, report, tune

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
