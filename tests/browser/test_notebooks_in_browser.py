"""The notebooks' widgets work in a real JupyterLab, in a real browser.

nbval (in `make test`) checks the kernel side: every cell runs. This test checks what a learner
sees, in headless Chromium: JupyterLab opens the notebook, *Run > Run All Cells* runs it, the
sliders render, and moving a slider with the keyboard redraws the figure and the table. A
mismatch between the kernel's ipywidgets and the lab extension, a figure that never redraws, or an
Output area left blank all fail it, as does any JavaScript error in the page.

Screenshots land in tests/browser/artifacts/ (or $LSTSD_EDU_ARTIFACTS): the slider's cell after
the run and after each move (`NN_name-1-ran.png`, `NN_name-2-...-moved.png`, ...), and the whole
notebook at the end (`NN_name.png`); a failing test adds `FAILED-<test>.png`. `jupyterlab.log` and
`browser-console.log` are saved next to them.

Run it alone with `make test-browser` or `.venv/bin/python -m pytest tests/browser -v`.
"""

from __future__ import annotations

import re

import pytest
from jupyterlab_driver import NotebookPage

# Console errors the page may print that are not failures of the notebooks. Each entry needs a
# reason; everything else logged at the "error" level fails the test.
HARMLESS_CONSOLE_ERRORS: list[re.Pattern] = []


@pytest.fixture
def notebook(browser, lab, deadline, artifacts, request):
    """Opens notebooks, each in a new tab that records its page errors; at the end, saves a
    screenshot if the test failed and closes the tabs."""
    errors: list[str] = []
    pages = []

    def open_notebook(name: str) -> NotebookPage:
        page = browser.new_page(errors, HARMLESS_CONSOLE_ERRORS)
        pages.append(page)
        notebook = NotebookPage(page, lab, deadline, errors).open(name)
        notebook.hide_file_browser()
        return notebook

    yield open_notebook
    for page in pages:
        try:
            if getattr(request.node, "rep_call", None) is None or request.node.rep_call.failed:
                page.screenshot(path=str(artifacts / f"FAILED-{request.node.name}.png"))
        except Exception:
            pass
        page.close()


def move_slider(notebook: NotebookPage, description: str, table_must_change: bool):
    """Press an arrow key on the slider `description`, as a learner would after clicking its
    handle; the figure in the slider's cell must change, and its table when `table_must_change`.
    Returns the cell (for a screenshot)."""
    slider = notebook.slider(description)
    cell = notebook.cell_of(slider)
    before = notebook.view(cell)
    assert before["images"], f"no figure in the cell of the {description!r} slider"
    assert before["tables"], f"no table in the cell of the {description!r} slider"

    value = notebook.readout(slider)
    notebook.press(slider, notebook.step_key(slider))
    notebook.wait_for_change(cell, before, "images")
    if table_must_change:
        notebook.wait_for_change(cell, before, "tables")
    assert notebook.readout(slider) != value, f"the {description!r} slider did not move"
    return cell


def assert_clean(notebook: NotebookPage) -> None:
    problems = notebook.failures() + notebook.errors
    assert not problems, "\n".join(problems)


def test_playground_sliders_retrain_and_redraw(notebook, artifacts):
    """06: run all cells; moving "long weight" (an LSTSD setting) retrains LSTSD alone and redraws:
    the figure and the table change, CE's row does not. Moving "epochs" retrains both methods: both
    rows change, and the lag slider's limit follows the run length."""
    playground = notebook("06_playground.ipynb")
    playground.run_all()
    assert_clean(playground)
    lag = playground.slider("lag")
    cell = playground.cell_of(lag)
    cell.screenshot(path=str(artifacts / "06_playground-1-ran.png"))
    rows = playground.table_rows(cell)
    assert set(rows) == {"ce", "lstsd"}, f"the playground's table has the rows {sorted(rows)}"
    # The title and the table's caption name the weight, so both change; LSTSD's accuracies may
    # not (a small weight change can leave them equal to three decimals). CE's run is reused.
    cell = move_slider(playground, "long weight", table_must_change=True)
    cell.screenshot(path=str(artifacts / "06_playground-2-long-weight-moved.png"))
    moved = playground.table_rows(cell)
    assert moved["ce"] == rows["ce"], f"moving an LSTSD setting changed CE's row: {rows['ce']} -> {moved['ce']}"
    # Another run length: CE and LSTSD are both retrained, and the lag stays below the epochs.
    lag_limit = playground.slider_limits(lag)[1]
    cell = move_slider(playground, "epochs", table_must_change=True)
    cell.screenshot(path=str(artifacts / "06_playground-3-epochs-moved.png"))
    retrained = playground.table_rows(cell)
    for method in ("ce", "lstsd"):
        assert retrained[method] != moved[method], f"a new run length left {method}'s row as it was"
    assert playground.slider_limits(lag)[1] != lag_limit, "the lag slider's limit did not follow the epochs"
    playground.screenshot_notebook(artifacts / "06_playground.png")
    assert_clean(playground)


def test_divergence_explorer_epoch_slider_redraws(notebook, artifacts):
    """05: run all cells; moving "epoch" redraws the per-sample divergence figure and its table."""
    explorer = notebook("05_per_sample_divergence.ipynb")
    explorer.run_all()
    assert_clean(explorer)
    explorer.cell_of(explorer.slider("epoch")).screenshot(path=str(artifacts / "05_per_sample_divergence-1-ran.png"))
    cell = move_slider(explorer, "epoch", table_must_change=True)
    cell.screenshot(path=str(artifacts / "05_per_sample_divergence-2-epoch-moved.png"))
    explorer.screenshot_notebook(artifacts / "05_per_sample_divergence.png")
    assert_clean(explorer)
