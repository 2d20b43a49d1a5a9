"""Drive the notebooks in a real JupyterLab, in a real (headless) Chromium.

nbval runs a notebook's kernel side only. It cannot see what a learner sees: whether the ipywidgets
front-end matches the kernel's ipywidgets, whether a slider renders at all, whether moving it
redraws the figure or leaves a stale one. This module holds the three pieces the browser test
(`test_notebooks_in_browser.py`) puts together to see it:

* `LabServer` — JupyterLab started from this project's own environment (`sys.executable -m
  jupyterlab`, i.e. `.venv` under `make test`), serving a temporary copy of the notebooks, on a free
  127.0.0.1 port with a random token, with `LSTSD_EDU_FAST=1` so the kernel's training runs are
  short. Its config, data, runtime and settings directories are temporary too, so nothing of the
  user's Jupyter set-up leaks in and nothing is written back. `stop()` ends the server and every
  kernel it started, by process id.
* `Chromium` — Debian's `chromium` (see `ensure_chromium.sh`) launched headless by the
  `playwright` package (`executable_path=`; playwright downloads no browser here), with a fresh
  profile. It records every JavaScript console error and uncaught page error.
* `NotebookPage` — what a learner does with a notebook: open it, *Run > Run All Cells* from the
  menu, wait for the widgets, put the keyboard focus on a slider's handle and press the arrow keys.

Every wait takes at most what is left of one `Deadline` shared by the whole test module (and
conftest.py adds a SIGALRM backstop), so the test cannot hang.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil  # a dependency of ipykernel, so always in the project's environment
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import sync_playwright

# Launch flags for Chromium: headless, no sandbox (the test runs as root in CI containers, where
# Chromium's sandbox cannot start), no GPU, and nothing that phones home (QUIC, component updates,
# sync, background networking) — the machine may have no internet, and the test must not need it.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# Lab settings for the test's JupyterLab (written into its temporary user-settings directory).
LAB_SETTINGS = {
    # Render every cell (JupyterLab may otherwise skip cells scrolled out of view).
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
    # No "would you like to receive news?" toast, no update check: the test runs offline.
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
}


class Deadline:
    """One time budget for a whole test module: every wait gets at most what is left of it."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        """Seconds left; raises TimeoutError once the budget is spent."""
        remaining = self.end - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"the browser test has used up its time budget of {self.seconds:.0f} s")
        return remaining

    def ms(self, cap_s: float) -> float:
        """A playwright timeout in milliseconds: `cap_s`, or less when less time is left."""
        return 1000 * min(cap_s, self.left())


def find_chromium() -> str | None:
    """The Chromium binary the test drives: $LSTSD_EDU_CHROMIUM, else `chromium` on PATH."""
    override = os.environ.get("LSTSD_EDU_CHROMIUM")
    if override:
        return override if os.access(override, os.X_OK) else None
    return shutil.which("chromium")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop_process_tree(proc: subprocess.Popen, grace_s: float = 10.0) -> None:
    """Stop `proc` (started with `start_new_session=True`) and every process below it.

    The descendants are listed *before* the first signal — a Jupyter kernel runs in a session of
    its own, so it is reached by its id, not through the server's process group. SIGTERM first
    (JupyterLab then shuts its kernels down itself), SIGKILL for whatever is left after `grace_s`.
    """
    try:
        tree = psutil.Process(proc.pid).children(recursive=True)
    except psutil.Error:
        tree = []
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            pass
    _, alive = psutil.wait_procs(tree, timeout=0 if proc.poll() is None else grace_s / 2)
    for survivor in alive:
        try:
            survivor.kill()
        except psutil.Error:
            pass
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=grace_s)


class LabServer:
    """A JupyterLab serving a temporary copy of `notebooks`, started by `start`, ended by `stop`."""

    def __init__(self, notebooks: Path, workdir: Path):
        self.workdir = workdir
        self.root = workdir / "notebooks"
        # The learner's notebooks are never touched: the server works on a copy.
        shutil.copytree(notebooks, self.root, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
        self.port = free_port()
        self.token = secrets.token_hex(24)
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "jupyterlab.log"
        self.proc: subprocess.Popen | None = None

    def _environment(self) -> dict:
        env = dict(os.environ)
        # `make test` sets MPLBACKEND=Agg for nbval; a learner's kernel draws inline instead.
        env.pop("MPLBACKEND", None)
        jupyter = self.workdir / "jupyter"
        env.update(
            LSTSD_EDU_FAST="1",  # short training runs in the kernel (read by lstsd_edu.experiments)
            # Fast-mode models are tiny: one thread trains them faster than two, and keeps the
            # test's time steady on a busy machine (threads that spin-wait for a core do not).
            OMP_NUM_THREADS="1",
            JUPYTER_CONFIG_DIR=str(jupyter / "config"),
            JUPYTER_DATA_DIR=str(jupyter / "data"),
            JUPYTER_RUNTIME_DIR=str(jupyter / "runtime"),
            JUPYTER_PREFER_ENV_PATH="1",  # the environment's kernel and lab extensions come first
            IPYTHONDIR=str(jupyter / "ipython"),
            PYDEVD_DISABLE_FILE_VALIDATION="1",
        )
        return env

    def start(self, deadline: Deadline) -> LabServer:
        settings = self.workdir / "jupyter" / "lab-settings"
        for plugin, values in LAB_SETTINGS.items():
            package, name = plugin.rsplit("/", 1)
            path = settings / package / f"{name}.jupyterlab-settings"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))
        command = [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root}",
            "--ServerApp.terminals_enabled=False",
            "--ServerApp.allow_root=True",  # CI containers run as root; the server is loopback-only
            f"--LabApp.user_settings_dir={settings}",
            f"--LabApp.workspaces_dir={self.workdir / 'jupyter' / 'workspaces'}",
            "--LabApp.extension_manager=readonly",  # no PyPI listing requests
        ]
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            command,
            cwd=self.root,
            env=self._environment(),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        status = f"{self.url}/api/status"
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with code {self.proc.returncode}:\n{self.log()}")
            try:
                request = urllib.request.Request(status, headers={"Authorization": f"token {self.token}"})
                with urllib.request.urlopen(request, timeout=2) as response:
                    if response.status == 200:
                        return self
            except OSError:
                pass
            if deadline.left() < 1:
                raise TimeoutError(f"JupyterLab did not answer on {self.url}:\n{self.log()}")
            time.sleep(0.25)

    def notebook_url(self, name: str) -> str:
        """`name` opened alone in a fresh workspace of its own (no tabs restored from before)."""
        workspace = re.sub(r"[^A-Za-z0-9_-]", "-", Path(name).stem)
        return f"{self.url}/lab/workspaces/{workspace}/tree/{name}?reset&token={self.token}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None:
            stop_process_tree(self.proc)
            self.proc = None
        if getattr(self, "_log", None):
            self._log.close()


class Chromium:
    """Headless Debian Chromium under playwright, with a fresh profile; collects page errors."""

    def __init__(self, executable: str, workdir: Path):
        self.console: list[str] = []
        others = {child.pid for child in psutil.Process().children()}
        self._playwright = sync_playwright().start()
        # The playwright driver: the one child process that starting playwright added.
        self._driver = [child for child in psutil.Process().children() if child.pid not in others]
        try:
            self.context = self._playwright.chromium.launch_persistent_context(
                str(workdir / "chromium-profile"),
                executable_path=executable,
                headless=True,
                args=CHROMIUM_ARGS,
                viewport={"width": 1280, "height": 1000},
                timeout=60_000,
            )
        except BaseException:
            self._playwright.stop()
            raise

    def new_page(self, errors: list[str], harmless: list[re.Pattern] = ()):
        """A new tab; its console errors (minus the `harmless` patterns) and uncaught exceptions
        are appended to `errors`, and every console message to `self.console` (the test's log)."""
        page = self.context.new_page()

        def on_console(message):
            text = f"[{message.type}] {message.text}"
            self.console.append(text)
            if message.type == "error" and not any(p.search(message.text) for p in harmless):
                errors.append(text)

        def on_page_error(error):
            self.console.append(f"[pageerror] {error}")
            errors.append(f"[pageerror] {error}")

        page.on("console", on_console)
        page.on("pageerror", on_page_error)
        return page

    def close(self) -> None:
        """Close the browser and the playwright driver; kill any Chromium process left behind."""
        ours = list(self._driver)  # the driver and the browser processes below it
        for driver in self._driver:
            try:
                ours += driver.children(recursive=True)
            except psutil.Error:
                pass
        # Best effort (after a SIGALRM the driver may be in any state): what does not close
        # here is killed below, by process id.
        try:
            self.context.close()
        except Exception:
            pass
        try:
            self._playwright.stop()
        except Exception:
            pass
        _, alive = psutil.wait_procs(ours, timeout=5)
        for survivor in alive:
            try:
                survivor.kill()
            except psutil.Error:
                pass


# JavaScript run in the page: has the run finished — no code cell queued or running ("[*]") and
# the kernel idle? (After a cell fails, JupyterLab leaves the cells below it unrun: `failures`
# then reports both the traceback and the unrun cells.)
_RUN_FINISHED = """() => {
    const prompts = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt')];
    const status = document.querySelector('.jp-Notebook-ExecutionIndicator');
    const idle = !status || status.getAttribute('data-status') === 'idle';
    return prompts.length > 0 && idle && !prompts.some(p => p.textContent.includes('*'));
}"""

# JavaScript run in the page: is the notebook's kernel started, connected and idle? The status
# bar reads "No Kernel | Initializing", "Python 3 (ipykernel) | Connecting", ... and finally
# "Python 3 (ipykernel) | Idle"; the toolbar's execution indicator says "idle" already before the
# kernel exists, so it alone is not enough.
_KERNEL_READY = """() => {
    const bar = [...document.querySelectorAll('.jp-StatusBar-Widget')].map(e => e.textContent).join(' ');
    const indicator = document.querySelector('.jp-Notebook-ExecutionIndicator');
    return /\\| Idle/.test(bar) && !bar.includes('No Kernel')
        && !!indicator && indicator.getAttribute('data-status') === 'idle';
}"""

# JavaScript run in the page before "Run All Cells": note when any prompt shows "[*]".
_WATCH_QUEUED = """() => {
    window.__lstsdSawQueued = false;
    new MutationObserver((records, observer) => {
        const prompts = document.querySelectorAll('.jp-Notebook .jp-InputPrompt');
        if ([...prompts].some(p => p.textContent.includes('*'))) {
            window.__lstsdSawQueued = true;
            observer.disconnect();
        }
    }).observe(document.body, {subtree: true, childList: true, characterData: true});
}"""

# A signature of what a cell shows: every image's source, and the text of every table and of
# every HTML widget (which holds a view's table and its caption).
_CELL_VIEW = """cell => JSON.stringify({
    images: [...cell.querySelectorAll('.jp-OutputArea img')].map(img => img.src),
    tables: [...cell.querySelectorAll('.jp-OutputArea table, .jp-OutputArea .widget-html')]
        .map(t => t.innerText),
})"""

# The rows of the tables of a cell's HTML widgets (a view's result table), each a list of cell texts.
_TABLE_ROWS = """cell => [...cell.querySelectorAll('.jp-OutputArea .widget-html table tbody tr')]
    .map(tr => [...tr.cells].map(td => td.innerText.trim()))"""

# Text the ipywidgets front-end puts in place of a widget it cannot show, or has not shown yet.
WIDGET_ERRORS = ("Error displaying widget", "Error rendering")
WIDGET_LOADING = "Loading widget..."
# An exception's traceback as IPython prints it: the "Traceback (most recent call last)" header,
# or (a SyntaxError, say) a last line "SomeError: message".
TRACEBACK = re.compile(r"Traceback \(most recent call last\)|^\w*(Error|Exception): ", re.MULTILINE)


class NotebookPage:
    """One notebook open in JupyterLab, handled the way a learner handles it."""

    def __init__(self, page, lab: LabServer, deadline: Deadline, errors: list[str] | None = None):
        self.page, self.lab, self.deadline = page, lab, deadline
        self.errors = errors if errors is not None else []  # the page's JavaScript errors

    def open(self, name: str) -> NotebookPage:
        self.page.goto(self.lab.notebook_url(name), timeout=self.deadline.ms(60))
        self.page.locator(".jp-NotebookPanel .jp-Notebook").first.wait_for(
            state="visible", timeout=self.deadline.ms(60)
        )
        self._choose_kernel_if_asked()
        # The kernel starts when the notebook opens. Cells run before it is connected are not
        # queued but dropped, so wait, as a learner would, for the status bar to read "… | Idle".
        self.page.wait_for_function(_KERNEL_READY, timeout=self.deadline.ms(60), polling=250)
        return self

    def _choose_kernel_if_asked(self) -> None:
        """Accept JupyterLab's "Select Kernel" dialog, shown when the notebook names no kernel
        this environment has; a learner would press Select too."""
        dialog = self.page.locator(".jp-Dialog")
        try:
            dialog.wait_for(state="visible", timeout=1500)
        except PlaywrightTimeout:
            return
        dialog.get_by_role("button", name=re.compile("^(Select|OK)$")).first.click()

    def run_all(self, cap_s: float = 120) -> None:
        """Run > Run All Cells from the menu bar, then wait until every cell has run.

        A committed notebook opens with numbered prompts already, so "every prompt has a number"
        alone would pass before anything ran: a MutationObserver notes the moment a prompt turns
        to "[*]" (queued or running), and the wait needs that too.
        """
        self.page.evaluate(_WATCH_QUEUED)
        self.page.locator("#jp-MainMenu").get_by_role("menuitem", name="Run", exact=True).click()
        self.page.locator(".lm-Menu").get_by_role("menuitem", name=re.compile(r"^Run All Cells")).click()
        try:
            self.page.wait_for_function("() => window.__lstsdSawQueued", timeout=self.deadline.ms(30), polling=100)
        except PlaywrightTimeout:
            raise AssertionError("Run > Run All Cells started no cell within 30 s") from None
        self.page.wait_for_function(_RUN_FINISHED, timeout=self.deadline.ms(cap_s), polling=250)

    def failures(self, settle_s: float = 15) -> list[str]:
        """What a learner would see go wrong: code cells left unrun, tracebacks, and widgets that
        show an error or are still "Loading widget..." after `settle_s` seconds."""
        notebook = self.page.locator(".jp-Notebook").first
        try:  # a widget whose model never arrives turns into "Error displaying widget" in seconds
            self.page.wait_for_function(
                f"() => !document.querySelector('.jp-Notebook').innerText.includes({WIDGET_LOADING!r})",
                timeout=self.deadline.ms(settle_s),
                polling=250,
            )
        except PlaywrightTimeout:
            pass
        found = []
        prompts = notebook.locator(".jp-CodeCell .jp-InputPrompt").all_inner_texts()
        unrun = [n for n, prompt in enumerate(prompts, 1) if not re.fullmatch(r"\[\d+\]:?", prompt.strip())]
        if unrun:
            found.append(f"code cells not run (1-based among code cells): {unrun}")
        # An exception's traceback is rendered as stderr text; warnings are stderr too, so look
        # for the traceback itself.
        for stderr in notebook.locator('[data-mime-type="application/vnd.jupyter.stderr"]').all():
            text = stderr.inner_text()
            if TRACEBACK.search(text):
                found.append("cell error: " + text[-1500:])
        found += [
            f"widget message: {line.strip()}"
            for line in notebook.inner_text().splitlines()
            if any(marker in line for marker in (*WIDGET_ERRORS, WIDGET_LOADING))
        ]
        return found

    def slider(self, description: str):
        """The slider whose description label reads `description` (waits until it renders)."""
        label = self.page.locator(".widget-label").filter(has_text=re.compile(rf"^\s*{re.escape(description)}\s*$"))
        slider = self.page.locator(".widget-slider").filter(has=label).first
        slider.wait_for(state="visible", timeout=self.deadline.ms(60))
        return slider

    def cell_of(self, element):
        """The notebook cell an element (a slider, say) is shown in."""
        return self.page.locator(".jp-Notebook .jp-Cell").filter(has=element).last

    def readout(self, slider) -> str:
        return slider.locator(".widget-readout").inner_text().strip()

    def press(self, slider, key: str, times: int = 1) -> None:
        """Focus the slider's handle, as a click or Tab would, and press `key` `times` times."""
        handle = slider.locator(".noUi-handle").first
        handle.scroll_into_view_if_needed(timeout=self.deadline.ms(10))
        handle.focus()
        for _ in range(times):
            handle.press(key)

    def view(self, cell) -> dict:
        """What a cell shows now: its images' sources and its tables' text."""
        return json.loads(cell.evaluate(_CELL_VIEW))

    def table_rows(self, cell) -> dict[str, list[str]]:
        """The rows of the result table a view shows in `cell`, keyed by their first column (the
        playground's: "ce", "lstsd")."""
        return {row[0]: row[1:] for row in cell.evaluate(_TABLE_ROWS) if row}

    def slider_limits(self, slider) -> tuple[str | None, str | None]:
        """(min, max) of a slider as its handle announces them (aria-valuemin, aria-valuemax)."""
        handle = slider.locator(".noUi-handle").first
        return handle.get_attribute("aria-valuemin"), handle.get_attribute("aria-valuemax")

    def wait_for_change(self, cell, before: dict, part: str, cap_s: float = 60) -> dict:
        """Wait until the cell's `part` ("images" or "tables") differs from `before` and is shown."""
        self.page.wait_for_function(
            """([cell, before, part]) => {
                const view = JSON.parse(("""
            + _CELL_VIEW
            + """)(cell));
                return view[part].length > 0 && JSON.stringify(view[part]) !== JSON.stringify(before[part]);
            }""",
            arg=[cell.element_handle(), before, part],
            timeout=self.deadline.ms(cap_s),
            polling=200,
        )
        return self.view(cell)

    def step_key(self, slider) -> str:
        """ArrowRight, or ArrowLeft when the slider already sits at its maximum."""
        handle = slider.locator(".noUi-handle").first
        now, top = handle.get_attribute("aria-valuenow"), handle.get_attribute("aria-valuemax")
        return "ArrowLeft" if now is not None and now == top else "ArrowRight"

    def hide_file_browser(self) -> None:
        """Ctrl+B, as a learner would, to give the notebook the whole width in the screenshots."""
        if self.page.locator("#jp-left-stack").is_visible():
            self.page.keyboard.press("Control+b")

    def screenshot_notebook(self, path: Path) -> None:
        """The whole notebook in one picture: grow the window to the notebook's height, scroll to
        the top, take the picture, and put the window back."""
        scroller = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-WindowedPanel-outer"
        cells = self.page.evaluate(f"""() => {{
            const cells = document.querySelector('{scroller} .jp-WindowedPanel-viewport');
            return cells ? cells.offsetHeight : 0;
        }}""")
        size = self.page.viewport_size
        chrome = 150  # menu bar, tab bar, notebook toolbar and status bar
        self.page.set_viewport_size({"width": size["width"], "height": max(size["height"], min(cells + chrome, 12000))})
        try:
            self.page.evaluate(f"() => document.querySelector('{scroller}').scrollTo(0, 0)")
            self.page.wait_for_timeout(500)  # let JupyterLab lay itself out at the new size
            self.page.screenshot(path=str(path))
        finally:
            self.page.set_viewport_size(size)
