"""Fixtures of the browser test: Chromium, a JupyterLab on a copy of the notebooks, a time bound.

All of them are module-scoped and end what they started whatever happens (pytest runs a
fixture's code after `yield` on failure, on error and on KeyboardInterrupt). The time bound is
double: every wait takes at most what is left of `BUDGET_S` (`Deadline`), and a SIGALRM after
`HARD_LIMIT_S` interrupts anything that would still hang, so the fixtures' clean-up runs.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest
from jupyterlab_driver import Chromium, Deadline, LabServer, find_chromium

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parents[1]
NOTEBOOKS = PROJECT / "notebooks"
INSTALLER = HERE / "ensure_chromium.sh"

BUDGET_S = 170  # every wait of the module shares this budget
HARD_LIMIT_S = 180  # then SIGALRM: the whole browser test takes at most 3 minutes


@pytest.fixture(scope="module")
def artifacts() -> Path:
    """Where screenshots and logs go: $LSTSD_EDU_ARTIFACTS, else tests/browser/artifacts/ (git-ignored)."""
    folder = Path(os.environ.get("LSTSD_EDU_ARTIFACTS") or HERE / "artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("FAILED-*.png"):  # from an earlier failing run
        stale.unlink()
    return folder


@pytest.fixture(scope="module")
def chromium_executable() -> str:
    """Debian's Chromium; installed by ensure_chromium.sh when missing; skip only if that fails."""
    executable = find_chromium()
    if executable is None:
        result = subprocess.run(["sh", str(INSTALLER)], capture_output=True, text=True, timeout=600, check=False)
        print(result.stderr, end="")
        executable = find_chromium()
        if executable is None:
            reason = (result.stderr.strip().splitlines() or ["ensure_chromium.sh printed nothing"])[-1]
            print(f"browser test skipped: Chromium could not be installed ({reason})")
            pytest.skip(f"Chromium could not be installed: {reason}")
    return executable


class BrowserTestTimeout(Exception):
    """Raised by SIGALRM when the browser test outlives HARD_LIMIT_S."""


@pytest.fixture(scope="module")
def deadline(chromium_executable):
    """The module's time budget, with a SIGALRM backstop (main thread only, POSIX)."""
    budget = Deadline(BUDGET_S)

    def on_alarm(signum, frame):
        budget.end = 0  # what is left of the module fails at its first wait
        raise BrowserTestTimeout(f"the browser test ran past its hard limit of {HARD_LIMIT_S} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(HARD_LIMIT_S)
    try:
        yield budget
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="module")
def lab(deadline, tmp_path_factory, artifacts):
    """JupyterLab from this environment on a temporary copy of notebooks/, LSTSD_EDU_FAST=1."""
    server = LabServer(NOTEBOOKS, tmp_path_factory.mktemp("jupyterlab"))
    try:
        yield server.start(deadline)
    finally:
        signal.alarm(0)  # the clean-up is bounded on its own and must not be interrupted
        server.stop()
        if server.log_path.exists():
            (artifacts / "jupyterlab.log").write_text(server.log_path.read_text(errors="replace"))


@pytest.fixture(scope="module")
def browser(lab, chromium_executable, tmp_path_factory, artifacts):
    """Headless Chromium with a fresh profile; its console log is saved as an artefact."""
    chromium = Chromium(chromium_executable, tmp_path_factory.mktemp("chromium"))
    try:
        yield chromium
    finally:
        signal.alarm(0)  # the clean-up is bounded on its own and must not be interrupted
        chromium.close()
        (artifacts / "browser-console.log").write_text("\n".join(chromium.console) + "\n")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item, so a fixture can tell that its test failed."""
    outcome = yield
    setattr(item, f"rep_{call.when}", outcome.get_result())
