"""The `lstsd-edu` command: a fast smoke run; one clean line with exit code 2 for bad input, --out
checked before training; Ctrl-C (exit 130, one line) and resuming to the same files, with and
without worker processes; diverged runs marked (exit 3); train's checkpoint."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from lstsd_edu.cli import main

TIMING = {"summary.csv": "seconds_per_epoch", "history.csv": "seconds"}  # wall times: left out of comparisons


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lstsd_edu", *args], capture_output=True, text=True, timeout=300)


def same_files(one: Path, two: Path) -> None:
    for name, timing in TIMING.items():
        a, b = (pd.read_csv(folder / name).drop(columns=timing) for folder in (one, two))
        pd.testing.assert_frame_equal(a, b)


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


# ---------------------------------------------------------------------------------------------
# --out is checked before any training
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "command, where",
    [
        ("compare", "a file"),
        ("compare", "under a file"),
        ("train", "a file"),
        ("train", "under a file"),
        ("memory", "a folder"),  # memory's --out names a CSV file
        ("memory", "under a file"),
    ],
)
def test_an_unusable_out_is_one_line_and_exit_code_2_before_training(tmp_path, capsys, command, where):
    afile = tmp_path / "afile"
    afile.write_text("not a folder")
    out = {"a file": afile, "under a file": afile / "sub", "a folder": tmp_path}[where]
    assert main([command, "--out", str(out)]) == 2  # the default settings would train for minutes
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("lstsd-edu: error: --out must be")


# ---------------------------------------------------------------------------------------------
# Ctrl-C and resume
# ---------------------------------------------------------------------------------------------
COMPARE = ["compare", "--dataset", "mnist1d", "--epochs", "2", "--width", "4", "--methods", "ce,lstsd"]
COMPARE += ["--seeds", "0,1", "--no-progress"]


def descendants(pid: int) -> set[int]:
    """Every process below `pid`, from /proc (children, their children, …)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rpartition(")")[2].split()[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def as_from_a_terminal() -> None:
    """In the child, before it starts: Ctrl-C's default action. A command started in the
    background by a shell script (`nohup make test &`) inherits SIGINT ignored, and Python then
    leaves it ignored; a terminal's user presses Ctrl-C on a command that has the default."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def interrupt_after_first_run(out: Path, *args: str) -> tuple[subprocess.CompletedProcess, set[int]]:
    """Start `lstsd-edu compare`, press Ctrl-C (SIGINT to its whole process group, as a terminal
    does) once the first run is in the store; returns the finished process and every process it
    had started."""
    process = subprocess.Popen(
        [sys.executable, "-m", "lstsd_edu", *COMPARE, "--out", str(out), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=as_from_a_terminal,
    )
    children: set[int] = set()
    deadline = time.monotonic() + 120
    while not list((out / "runs").glob("*.json")) and process.poll() is None and time.monotonic() < deadline:
        children |= descendants(process.pid)
        time.sleep(0.01)
    children |= descendants(process.pid)
    os.killpg(process.pid, signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr), children


@pytest.fixture(scope="module")
def straight(tmp_path_factory) -> Path:
    """The files of the comparison trained without interruption."""
    out = tmp_path_factory.mktemp("straight")
    assert main([*COMPARE, "--out", str(out)]) == 0
    return out


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc")
@pytest.mark.parametrize("jobs", ["1", "2"])
def test_ctrl_c_keeps_finished_runs_and_the_same_command_resumes_to_the_same_files(tmp_path, straight, jobs):
    result, children = interrupt_after_first_run(tmp_path / "cut", "--jobs", jobs)
    assert result.returncode == 130, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    kept = len(list((tmp_path / "cut" / "runs").glob("*.json")))
    assert 1 <= kept < 4
    assert f"{kept} of 4 runs finished and are kept in {tmp_path / 'cut' / 'runs'}" in result.stderr
    assert "run the same command again to resume" in result.stderr
    assert not (tmp_path / "cut" / "summary.csv").exists()
    if jobs == "2":
        assert len(children) >= 2  # the workers (and multiprocessing's resource tracker)
    deadline = time.monotonic() + 30  # a moment for the resource tracker to see its pipe close
    while any(alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [pid for pid in children if alive(pid)], "a child process outlived the command"

    assert main([*COMPARE, "--out", str(tmp_path / "cut")]) == 0  # resumes (one job: the same numbers)
    same_files(tmp_path / "cut", straight)


def test_a_second_run_reads_every_run_from_the_store_and_fresh_trains_again(tmp_path, capsys):
    args = [*COMPARE[:-3], "--seeds", "0", "--no-progress", "--out", str(tmp_path)]
    assert main(args) == 0
    stored = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "runs").glob("*.json")}
    first = pd.read_csv(tmp_path / "summary.csv")
    assert main(args) == 0
    pd.testing.assert_frame_equal(first, pd.read_csv(tmp_path / "summary.csv"))  # timing columns too: not retrained
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "runs").glob("*.json")} == stored
    assert main([*args, "--fresh"]) == 0
    assert all(p.stat().st_mtime_ns != stored[p.name] for p in (tmp_path / "runs").glob("*.json"))


# ---------------------------------------------------------------------------------------------
# divergence
# ---------------------------------------------------------------------------------------------
def test_diverged_runs_are_marked_left_out_of_the_means_and_exit_code_3(tmp_path, capsys):
    args = ["compare", "--lr", "9.9", "--methods", "ce,lstsd", "--seeds", "0", "--epochs", "3", "--width", "4"]
    assert main([*args, "--no-progress", "--out", str(tmp_path)]) == 3
    captured = capsys.readouterr()
    warnings = [line for line in captured.err.splitlines() if "diverged" in line]
    assert len(warnings) == 2 and "ce seed 0" in warnings[0] and "lstsd seed 0" in warnings[1]
    assert all(line.startswith("lstsd-edu: warning: ") for line in warnings)
    summary = pd.read_csv(tmp_path / "summary.csv")
    history = pd.read_csv(tmp_path / "history.csv")
    assert summary.diverged.all() and summary.final_test_acc.isna().all()
    for row in summary.itertuples():
        trained = history[(history.method == row.method) & (history.seed == row.seed)]
        assert trained.epoch.max() == row.diverged_epoch < 3  # stopped early, the epochs trained kept
    assert "1 of 1" in captured.out and "left out of the means" in captured.out


# ---------------------------------------------------------------------------------------------
# train: a checkpoint after every epoch
# ---------------------------------------------------------------------------------------------
def test_train_continues_from_its_checkpoint_and_refuses_one_from_other_settings(tmp_path, capsys):
    args = ["train", "--dataset", "digits", "--epochs", "3", "--width", "4", "--method", "lstsd", "--no-progress"]
    assert main([*args, "--out", str(tmp_path)]) == 0
    assert (tmp_path / "checkpoint.pt").exists()
    history = pd.read_csv(tmp_path / "history.csv")
    assert main([*args, "--out", str(tmp_path)]) == 0  # finished: read back, not trained again
    pd.testing.assert_frame_equal(history, pd.read_csv(tmp_path / "history.csv"))
    capsys.readouterr()
    assert main([*args, "--lr", "0.01", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "checkpoint is from another run: lr is 0.05 there, 0.01 here" in err
    assert main([*args, "--lr", "0.01", "--fresh", "--out", str(tmp_path)]) == 0


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc")
def test_train_interrupted_resumes_from_the_last_epoch_to_the_same_history(tmp_path):
    args = ["train", "--dataset", "digits", "--epochs", "20", "--width", "4", "--method", "lstsd", "--no-progress"]
    process = subprocess.Popen(
        [sys.executable, "-m", "lstsd_edu", *args, "--out", str(tmp_path / "cut")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=as_from_a_terminal,
    )
    deadline = time.monotonic() + 120
    while not (tmp_path / "cut" / "checkpoint.pt").exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert stderr.count("\n") == 1 and "Traceback" not in stderr
    assert "epoch(s) are kept in" in stderr and "checkpoint.pt" in stderr
    assert main([*args, "--out", str(tmp_path / "cut")]) == 0
    assert main([*args, "--out", str(tmp_path / "straight")]) == 0
    a, b = (pd.read_csv(tmp_path / d / "history.csv").drop(columns="seconds") for d in ("cut", "straight"))
    pd.testing.assert_frame_equal(a, b)
    assert len(a) == 20
