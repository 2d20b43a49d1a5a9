"""lstsd_edu.runs: the store of finished runs, the executor that resumes from it, run keys, the
checks and atomic writes of output files, and how a command ends (exit codes, one line)."""

import math
import warnings
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from lstsd_edu.data import Dataset
from lstsd_edu.errors import ConfigError
from lstsd_edu.experiments import compare, preset, sweep
from lstsd_edu.runs import (
    Interrupted,
    RunStore,
    command,
    data_fingerprint,
    execute,
    output_file,
    output_folder,
    run_key,
    save_figure,
    write_csv,
    write_text,
)

CONFIG = preset("digits", epochs=2, width=4)
TRAINED: list[tuple] = []  # what `fake_run` was asked to train, in order


def fake_run(method, config, seed, data):
    """A stand-in for `experiments.outcome` that trains nothing: numbers that a JSON round trip
    could spoil (a float that is not a short decimal, NaN, a numpy integer, a bool)."""
    TRAINED.append((method, config.lr, seed))
    summary = dict(
        method=method,
        seed=np.int64(seed),
        final_test_acc=1 / 3 + seed,
        selected_epoch=math.nan,
        diverged=np.bool_(False),
    )
    history = pd.DataFrame({"method": method, "seed": seed, "epoch": [1, 2], "loss": [0.1 + 0.2, math.nan]})
    return summary, history


@pytest.fixture(autouse=True)
def forget_training():
    TRAINED.clear()


def tasks(seeds=(0, 1, 2)):
    return [("ce", CONFIG, s) for s in seeds]


def small_data(seed=0) -> Dataset:
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(80, 1, 8, 8)), np.arange(80) % 4
    return Dataset.from_arrays(x[:60], y[:60], x[60:], y[60:], val_fraction=0.2)


def test_the_store_keeps_each_run_and_a_second_call_trains_nothing(tmp_path):
    first = execute(tasks(), run=fake_run, store=tmp_path, progress=False)
    assert TRAINED == [("ce", CONFIG.lr, 0), ("ce", CONFIG.lr, 1), ("ce", CONFIG.lr, 2)]
    assert len(RunStore(tmp_path).keys()) == 3
    TRAINED.clear()
    again = execute(tasks(), run=fake_run, store=tmp_path, progress=False)
    assert TRAINED == []
    for (s1, h1), (s2, h2) in zip(first, again):
        assert s1.keys() == s2.keys() and h1.equals(h2)
        assert s1["final_test_acc"] == s2["final_test_acc"]  # bit for bit
        assert math.isnan(s2["selected_epoch"]) and s2["diverged"] is False and type(s2["seed"]) is int


def test_a_run_trained_now_and_one_read_back_are_the_same_values():
    """Without a store the outcome goes through the same encoding, so files written from either
    are identical (what makes a resumed command's files equal to an uninterrupted one's)."""
    ((summary, history),) = execute(tasks([1]), run=fake_run, progress=False)
    assert summary["final_test_acc"] == 1 / 3 + 1 and type(summary["seed"]) is int
    assert history.loss.iloc[0] == 0.1 + 0.2 and math.isnan(history.loss.iloc[1])


def test_only_missing_runs_are_trained_and_results_keep_the_task_order(tmp_path):
    execute(tasks([1]), run=fake_run, store=tmp_path, progress=False)
    TRAINED.clear()
    results = execute(tasks([2, 1, 0, 2]), run=fake_run, store=tmp_path, progress=False)
    assert TRAINED == [("ce", CONFIG.lr, 2), ("ce", CONFIG.lr, 0)]  # 1 was stored; 2 asked twice, trained once
    assert [s["seed"] for s, _ in results] == [2, 1, 0, 2]


def test_fresh_trains_these_tasks_again_and_leaves_other_runs_alone(tmp_path):
    execute(tasks([0, 1]), run=fake_run, store=tmp_path, progress=False)
    other = run_key("ce", CONFIG, 1)
    TRAINED.clear()
    execute(tasks([0]), run=fake_run, store=tmp_path, progress=False, fresh=True)
    assert TRAINED == [("ce", CONFIG.lr, 0)]
    assert other in RunStore(tmp_path)


def test_keys_depend_on_method_every_setting_seed_and_the_data_tensors():
    key = run_key("ce", CONFIG, 0)
    assert key == run_key("ce", preset("digits", epochs=2, width=4), 0)  # stable
    assert key.startswith("ce-0-")
    others = [
        run_key("lstsd", CONFIG, 0),
        run_key("ce", CONFIG, 1),
        run_key("ce", replace(CONFIG, label_smoothing=0.2), 0),  # a setting ce does not even read
        run_key("ce", CONFIG, 0, small_data()),
    ]
    assert len({key, *others}) == 5
    assert run_key("ce", CONFIG, 0, small_data()) == run_key("ce", CONFIG, 0, small_data())  # same tensors
    changed = small_data()
    changed.train.x[0, 0, 0, 0] += 1e-3
    assert data_fingerprint(changed) != data_fingerprint(small_data())
    assert data_fingerprint(replace(small_data(), name="other")) == data_fingerprint(small_data())


def interrupting_run(method, config, seed, data):
    if seed == 1:
        raise KeyboardInterrupt
    return fake_run(method, config, seed, data)


def test_ctrl_c_keeps_the_finished_runs_and_says_how_to_resume(tmp_path):
    with pytest.raises(Interrupted) as interrupted:
        execute(tasks(), run=interrupting_run, store=tmp_path, progress=False)
    assert isinstance(interrupted.value, KeyboardInterrupt)  # a notebook's interrupt still is one
    assert f"1 of 3 runs finished and are kept in {tmp_path}" in str(interrupted.value)
    assert "run the same command again to resume" in str(interrupted.value)
    assert len(RunStore(tmp_path).keys()) == 1
    TRAINED.clear()
    execute(tasks(), run=fake_run, store=tmp_path, progress=False)
    assert TRAINED == [("ce", CONFIG.lr, 1), ("ce", CONFIG.lr, 2)]


def test_an_unreadable_stored_run_is_trained_again_with_a_warning(tmp_path):
    execute(tasks([0]), run=fake_run, store=tmp_path, progress=False)
    store = RunStore(tmp_path)
    store.path(store.keys()[0]).write_text('{"summary": {"method": "ce"')  # cut short by hand
    TRAINED.clear()
    with pytest.warns(UserWarning, match="cannot be read"):
        execute(tasks([0]), run=fake_run, store=tmp_path, progress=False)
    assert TRAINED == [("ce", CONFIG.lr, 0)]


def test_execute_checks_jobs():
    with pytest.raises(ConfigError, match="jobs"):
        execute(tasks(), run=fake_run, jobs=0)


# ---------------------------------------------------------------------------------------------
# compare and sweep on the executor, with your own data
# ---------------------------------------------------------------------------------------------
def test_compare_and_sweep_take_your_own_data_and_a_store(tmp_path):
    config = preset("digits", model="mlp", epochs=2, width=4, val_fraction=0.0)
    summary, history = compare(["ce", "lstsd"], config, [0, 1], data=small_data(), store=tmp_path, progress=False)
    assert summary[["method", "seed"]].values.tolist() == [["ce", 0], ["lstsd", 0], ["ce", 1], ["lstsd", 1]]
    assert len(history) == 4 * 2 and not summary.diverged.any()
    assert len(RunStore(tmp_path).keys()) == 4
    again, _ = compare(["ce", "lstsd"], config, [0, 1], data=small_data(), store=tmp_path, progress=False)
    pd.testing.assert_frame_equal(summary, again)  # read back, timing columns included
    compare(["ce"], config, [0], data=small_data(seed=1), store=tmp_path, progress=False)
    assert len(RunStore(tmp_path).keys()) == 5  # other data, another run

    grid = sweep("lstsd", config, {"lag": [1, 2]}, [0], data=small_data(), store=tmp_path, progress=False)
    assert grid.lag.tolist() == [1, 2] and grid.method.eq("lstsd").all()
    with pytest.raises(ConfigError, match="noise"):
        sweep("lstsd", config, {"noise": [0.1]}, [0], data=small_data())


@pytest.mark.parametrize(
    "call, parameter",
    [
        (lambda: compare([], CONFIG, [0]), "methods"),
        (lambda: compare("ce", CONFIG, [0]), "methods"),
        (lambda: compare(["ce", "ce"], CONFIG, [0]), "methods"),
        (lambda: compare(["ce"], CONFIG, [0, 0]), "seeds"),
        (lambda: compare(["ce"], CONFIG, []), "seeds"),
        (lambda: compare(["ce"], CONFIG, [-1]), "seeds"),
        (lambda: compare(["ce"], CONFIG, [0], jobs=0), "jobs"),
        (lambda: compare(["ce"], {"lr": 0.1}, [0]), "config"),
        (lambda: compare(["ce"], CONFIG, [0], data=[1, 2]), "data"),
        (lambda: sweep("ce", CONFIG, {"magic": [1]}), "grid"),
        (lambda: sweep("ce", CONFIG, {"lag": 3}), "grid"),
        (lambda: sweep("ce", CONFIG, {"lag": [0]}), "lag"),
    ],
)
def test_bad_input_to_compare_and_sweep_names_the_parameter(call, parameter):
    with pytest.raises(ConfigError, match=parameter):
        call()


# ---------------------------------------------------------------------------------------------
# output files
# ---------------------------------------------------------------------------------------------
def test_output_folder_is_created_and_a_file_or_a_path_under_a_file_is_refused(tmp_path):
    assert output_folder(tmp_path / "a" / "b").is_dir()
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(ConfigError, match=r"--out must be a folder; .* is a file"):
        output_folder(afile)
    with pytest.raises(ConfigError, match="--out must be a folder this process can write"):
        output_folder(afile / "sub")
    with pytest.raises(ConfigError, match=r"--out must be a file name; .* is a folder"):
        output_file(tmp_path)
    assert output_file(tmp_path / "new" / "x.csv").parent.is_dir()


def test_a_failed_write_leaves_the_old_file_whole_and_no_temporary_file(tmp_path):
    path = tmp_path / "summary.csv"
    write_csv(pd.DataFrame({"a": [1, 2]}), path)
    before = path.read_bytes()

    class Broken:
        def savefig(self, file, **kwargs):
            file.write(b"half a picture")
            raise OSError("disk full")

    with pytest.raises(OSError):
        save_figure(Broken(), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["summary.csv"]
    write_text("new", path)
    assert path.read_text() == "new"


# ---------------------------------------------------------------------------------------------
# how a command ends
# ---------------------------------------------------------------------------------------------
def test_command_turns_errors_interrupts_and_warnings_into_one_line_each(capsys):
    def bad():
        raise ConfigError("lag must be an integer in [1, 1000]; got 0")

    def interrupted():
        raise Interrupted("interrupted: 1 of 4 runs finished and are kept in x; run the same command again to resume")

    def warns():
        warnings.warn("ce seed 0 diverged in epoch 1", RuntimeWarning, stacklevel=1)
        return 3

    assert command("prog", bad) == 2
    assert capsys.readouterr().err == "prog: error: lag must be an integer in [1, 1000]; got 0\n"
    assert command("prog", interrupted) == 130
    assert capsys.readouterr().err.startswith("prog: interrupted: 1 of 4 runs")
    assert command("prog", lambda: (_ for _ in ()).throw(KeyboardInterrupt)) == 130
    assert capsys.readouterr().err == "prog: interrupted\n"
    assert command("prog", warns) == 3
    assert capsys.readouterr().err == "prog: warning: ce seed 0 diverged in epoch 1\n"


def test_workers_need_a_run_function_they_can_import():
    with pytest.raises(ConfigError, match="run must be a module-level function"):
        execute(tasks(), run=lambda *task: fake_run(*task), jobs=2, progress=False)
