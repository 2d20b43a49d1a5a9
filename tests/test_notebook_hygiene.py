"""Every committed chapter is a clean, executed, well-formed notebook.

nbval checks that the notebooks *run*; this checks what is *committed*: valid nbformat JSON with
a `python3` kernel; the chapter structure of CONVENTIONS.md (a first cell with a title, what you
will learn and the run time; Summary and Exercises at the end); outputs from a top-to-bottom run;
and nothing a reader cannot use or that changes from run to run — widget state, widget-view
outputs, errors, memory addresses, timestamps, absolute paths, progress bars. The volatile-value
rules are those `notebooks/execute.py` applies before writing a notebook back.
"""

import importlib.util
import json
import re
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
CHAPTERS = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def load_execute_script():
    spec = importlib.util.spec_from_file_location("notebooks_execute", NOTEBOOKS / "execute.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


execute = load_execute_script()


def test_there_are_chapters():
    names = [p.name for p in CHAPTERS]
    for stem in (
        "00_quickstart",
        "01_snapshot_buffer",
        "02_the_loss",
        "03_with_and_without",
        "04_per_sample_divergence",
        "05_playground",
        "06_your_own_data",
    ):
        assert f"{stem}.ipynb" in names


@pytest.fixture(params=CHAPTERS, ids=[p.stem for p in CHAPTERS])
def notebook(request) -> nbformat.NotebookNode:
    path = request.param
    json.loads(path.read_text(encoding="utf-8"))  # valid JSON first, with a clear error if not
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    return nb


def test_kernel_is_python3(notebook):
    assert notebook.metadata.kernelspec.name == "python3"


def test_first_cell_has_title_goals_and_run_time(notebook):
    first = notebook.cells[0]
    assert first.cell_type == "markdown"
    assert re.match(r"# \d\d · \S", first.source), "title: '# NN · Topic'"
    assert "**What you will learn**" in first.source
    assert re.search(r"\*\*Run time\*\*:? .*\d", first.source), "a measured run time"


def test_last_cells_are_summary_and_exercises(notebook):
    last, before = notebook.cells[-1], notebook.cells[-2]
    assert last.cell_type == "markdown" and "## Exercises" in last.source
    closing = before.source + "\n" + last.source
    assert re.search(r"^## Summary", closing, re.M)
    assert closing.index("## Summary") < closing.index("## Exercises")


def test_executed_top_to_bottom_with_outputs(notebook):
    code = [c for c in notebook.cells if c.cell_type == "code"]
    counts = [c.execution_count for c in code]
    assert all(isinstance(n, int) for n in counts), "every code cell executed"
    assert counts == list(range(1, len(code) + 1)), "in order, in one kernel session"
    assert any(c.outputs for c in code), "outputs are committed"
    for cell in code:
        for output in cell.outputs:
            data = output.get("data", {})
            text = "".join(data.get("text/plain", ""))
            assert not (text.startswith("<Figure size") and "image/png" not in data), (
                "a figure without its image: executed with the Agg backend, not the inline one"
            )


def test_no_widget_state_errors_or_volatile_output(notebook):
    assert execute.problems(notebook) == []


def test_code_never_branches_on_fast_mode(notebook):
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert "LSTSD_EDU_FAST" not in cell.source and "fast_mode" not in cell.source


# ---------------------------------------------------------------------------------------------
# The checker and the cleaner themselves, on made-up notebooks
# ---------------------------------------------------------------------------------------------
def made_up_notebook() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    cell = nbformat.v4.new_code_cell("view", execution_count=1)
    cell.metadata["execution"] = {"iopub.execute_input": "2026-01-01T10:00:00Z"}
    cell.outputs = [
        nbformat.v4.new_output(
            "display_data",
            data={
                execute.WIDGET_VIEW: {"model_id": "abc", "version_major": 2, "version_minor": 0},
                "text/plain": "VBox(...)",
            },
        ),
        nbformat.v4.new_output("execute_result", data={"text/plain": "0.812"}, execution_count=1),
    ]
    nb.cells = [cell]
    return nb


def test_clean_strips_widget_state_and_timestamps():
    nb = execute.clean(made_up_notebook())
    assert "widgets" not in nb.metadata
    assert "execution" not in nb.cells[0].metadata
    assert [o.output_type for o in nb.cells[0].outputs] == ["execute_result"]
    assert execute.problems(nb) == []


@pytest.mark.parametrize(
    "text, kind",
    [
        ("<Figure at 0x7f3a2c1d9e80>", "memory address"),
        ("finished 2026-03-01", "date"),
        ("at 14:03:59", "clock time"),
        ("/home/someone/lstsd-edu/notebooks/x.py:3: UserWarning", "absolute path"),
        ("100%|██████████| 60/60", "progress bar"),
    ],
)
def test_problems_finds_volatile_output(text, kind):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("x", execution_count=1)
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text)]
    nb.cells = [cell]
    found = execute.problems(nb)
    assert len(found) == 1 and kind in found[0]
    assert execute.problems(made_up_notebook())[:1] == ["metadata.widgets holds widget state"]


def test_run_time_line_is_rewritten_with_the_measurement():
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell(
            "# 99 · X\n\n**Run time**: about 3 s on 8 CPU cores (measured by `notebooks/execute.py`, full mode)\n"
        )
    ]
    execute.stamp_run_time(nb, 125.0)
    assert "**Run time**: about 2.1 min on " in nb.cells[0].source
    assert "(measured by `notebooks/execute.py`, full mode, " in nb.cells[0].source
    assert nb.cells[0].source.count("Run time") == 1
    other = "**Run time**: about 5 minutes on a laptop CPU"
    nb.cells[0].source = other
    execute.stamp_run_time(nb, 10.0)
    assert nb.cells[0].source == other  # lines in another form are left alone
