"""The `lstsd-edu` command: a fast smoke run, and one clean line with exit code 2 for bad input."""

import subprocess
import sys

import pandas as pd
import pytest

from lstsd_edu.cli import main


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lstsd_edu", *args], capture_output=True, text=True, timeout=300)


def test_compare_fast_smoke_run(tmp_path, capsys):
    code = main(
        [
            "compare",
            "--fast",
            "--methods",
            "ce,lstsd",
            "--seeds",
            "0,1",
            "--noise",
            "0.3",
            "--out",
            str(tmp_path),
            "--no-progress",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "lstsd" in printed and "±" in printed
    summary = pd.read_csv(tmp_path / "summary.csv")
    history = pd.read_csv(tmp_path / "history.csv")
    assert {
        "method",
        "seed",
        "dataset",
        "model",
        "noise",
        "noise_kind",
        "epochs",
        "final_test_acc",
        "selected_epoch",
        "selected_val_acc",
        "selected_test_acc",
        "oracle_best_test_acc",
        "seconds_per_epoch",
        "buffer_bytes",
    } <= set(summary.columns)
    assert len(summary) == 4 and set(summary.method) == {"ce", "lstsd"}
    assert list(history.columns[:2]) == ["method", "seed"]
    assert {"epoch", "lr", "train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc", "seconds"} <= set(
        history.columns
    )
    assert history.val_acc.notna().all() and summary.selected_test_acc.notna().all()
    assert len(history) == 4 * summary.epochs.iloc[0]
    assert (tmp_path / "comparison.png").stat().st_size > 10_000


def test_jobs_train_runs_side_by_side_with_the_same_numbers(tmp_path):
    args = [
        "compare",
        "--dataset",
        "digits",
        "--epochs",
        "2",
        "--methods",
        "ce,lstsd,born_again",
        "--seeds",
        "0,1",
        "--no-progress",
    ]
    assert main([*args, "--out", str(tmp_path / "one")]) == 0
    assert main([*args, "--jobs", "2", "--out", str(tmp_path / "two")]) == 0
    for name, timing in [("summary.csv", "seconds_per_epoch"), ("history.csv", "seconds")]:
        one, two = (pd.read_csv(tmp_path / run / name).drop(columns=timing) for run in ("one", "two"))
        assert one.equals(two)


def test_module_entry_point_runs():
    result = run_cli("compare", "--help")
    assert result.returncode == 0 and "--long-mode" in result.stdout


@pytest.mark.parametrize(
    "args, parameter",
    [
        (["--lag", "0"], "lag"),
        (["--lag", "5000"], "lag"),
        (["--long-weight", "1.5"], "w_long"),
        (["--w-short", "-0.2"], "w_short"),
        (["--long-weight", "0.6", "--short-weight", "0.6"], "w_long + w_short"),
        (["--temperature", "0"], "temperature"),
        (["--noise", "1.0"], "noise"),
        (["--noise", "-0.1"], "noise"),
        (["--dataset", "imagenet"], "dataset"),
        (["--methods", "ce,magic"], "method"),
        (["--model", "transformer9000"], "model"),
        (["--device", "tpu"], "device"),
        (["--long-mode", "cyclic"], "long_mode"),
        (["--noise-kind", "random"], "noise_kind"),
        (["--seeds", "0,one"], "seeds"),
        (["--seeds", ""], "seeds"),
        (["--epochs", "0"], "epochs"),
        (["--lag", "three"], "--lag"),
        (["--jobs", "0"], "jobs"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(args, parameter, capsys):
    with pytest.raises(SystemExit) as exit_info:
        code = main(["compare", "--fast", *args])
        raise SystemExit(code)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert parameter in err


def test_bad_input_through_the_real_command_has_no_traceback():
    result = run_cli("compare", "--long-weight", "0.9", "--short-weight", "0.9")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr
    assert "w_long + w_short must be at most 1" in result.stderr
