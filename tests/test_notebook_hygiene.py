"""Every committed chapter is a clean, executed, well-formed notebook.

nbval checks that the notebooks *run*; this checks what is *committed*: valid nbformat JSON with
a `python3` kernel; the chapter structure of CONVENTIONS.md (a first cell with a title, what you
will learn and the run time; Summary and Exercises at the end); outputs from a top-to-bottom run;
and nothing a reader cannot use or that changes from run to run — widget state, widget-view
outputs, errors, memory addresses, timestamps, absolute paths, progress bars. The volatile-value
rules are those `notebooks/execute.py` applies before writing a notebook back.

And nothing private, anywhere in the file (sources, outputs, metadata; images aside): no widget
state under any key, no absolute path of someone's machine (/home/…, /root/…, /Users/…, C:\\…),
no user name (this machine's, or a metadata field naming a person), no token or secret (a
`token=` in a URL, an API key, a long hex string), and no metadata beyond the kernel's and the
cell tags a chapter uses.
"""

import getpass
import importlib.util
import json
import os
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
        "03_the_loop",
        "04_with_and_without",
        "05_per_sample_divergence",
        "06_playground",
        "07_your_own_data",
        "08_your_own_loop",
        "09_peers",
        "10_scaling_up",
        "11_text",
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


# ---------------------------------------------------------------------------------------------
# Nothing private: the whole file, not only the outputs
# ---------------------------------------------------------------------------------------------
PRIVATE = {
    "absolute path": re.compile(
        r"(?<![\w.~])/(?:home|root|Users|tmp|work|var/folders)/"  # POSIX home folders, this machine's
        r"|(?<!\w)[A-Za-z]:[\\/](?:Users|Documents and Settings|Windows|Program Files|[\w.-]+[\\/])"  # Windows
    ),
    "token": re.compile(r"(?i)[?&]token=|(?<![a-z])(?:token|api_?key|secret|password)\s*[=:]\s*['\"]?[\w-]{8,}"),
    "hex secret": re.compile(r"(?i)(?<![0-9a-f])[0-9a-f]{32,}(?![0-9a-f])"),
    "access key": re.compile(r"\b(?:ghp|gho|github_pat|hf|sk|xox[bp])[_-][A-Za-z0-9_]{20,}|\bAKIA[0-9A-Z]{16}\b"),
    "e-mail address": re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b"),
}
WIDGET_TYPES = ("application/vnd.jupyter.widget-state+json", "application/vnd.jupyter.widget-view+json")
NOTEBOOK_METADATA = {"kernelspec", "language_info"}  # what a chapter's metadata may hold, no more
CELL_METADATA = {"tags", "jupyter", "editable", "deletable", "slideshow"}
PERSON_FIELDS = {"author", "authors", "user", "username", "email", "owner"}
GENERIC_USERS = {"root", "user", "admin", "runner", "ubuntu"}  # too common a word to search for


def user_names() -> set[str]:
    """This machine's user name(s), if distinctive enough to search for."""
    names = {os.environ.get(v, "") for v in ("USER", "USERNAME", "LOGNAME")}
    try:
        names.add(getpass.getuser())
    except (KeyError, OSError):
        pass
    return {n for n in names if len(n) >= 3 and n.lower() not in GENERIC_USERS}


def strings(node, path: str = "") -> list[tuple[str, str]]:
    """(where, text) for every key and string in a notebook's JSON, images left out."""
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            found.append((path, str(key)))
            if not str(key).startswith("image/"):
                found += strings(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += strings(value, f"{path}[{i}]")
    elif isinstance(node, str):
        found.append((path, node))
    return found


def private(nb: dict) -> list[str]:
    """What a committed notebook must not hold; see the module docstring."""
    problems = []
    extra = set(nb.get("metadata", {})) - NOTEBOOK_METADATA
    if extra:
        problems.append(f"metadata holds {', '.join(sorted(extra))}")
    for i, cell in enumerate(nb.get("cells", [])):
        extra = set(cell.get("metadata", {})) - CELL_METADATA
        if extra:
            problems.append(f"cell {i}: metadata holds {', '.join(sorted(extra))}")
    names = user_names()
    for where, text in strings(nb):
        if text in WIDGET_TYPES:
            problems.append(f"{where}: widget state or view ({text})")
        if text.lower() in PERSON_FIELDS and ".metadata" in f".{where}":
            problems.append(f"{where}: a metadata field naming a person ({text})")
        for kind, pattern in PRIVATE.items():
            match = pattern.search(text)
            if match:
                problems.append(f"{where}: {kind} {match.group(0)!r}")
        for name in names:
            if re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text):
                problems.append(f"{where}: this machine's user name {name!r}")
    return problems


def test_nothing_private_anywhere_in_the_file(notebook):
    assert private(notebook) == []


@pytest.mark.parametrize(
    "text, kind",
    [
        ("/home/alice/lstsd-edu/notebooks", "absolute path"),
        ("open('/root/data/x.npz')", "absolute path"),
        ("saved to /Users/bob/Desktop/fig.png", "absolute path"),
        ("C:\\Users\\carol\\lstsd-edu", "absolute path"),
        ("D:\\work\\runs\\x.csv", "absolute path"),
        ("http://localhost:8888/lab?token=3f9a1c0b2d", "token"),
        ("http://127.0.0.1:8888/tree&token=abc", "token"),
        ("HF_TOKEN = 'abcdefgh12345678'", "token"),
        ("key 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "hex secret"),
        ("hf_abcdefghijklmnopqrstuvwxyz0123", "access key"),
        ("ghp_abcdefghijklmnopqrstuvwxyz0123456789", "access key"),
        ("mail alice@example.org for the data", "e-mail address"),
    ],
)
@pytest.mark.parametrize("place", ["source", "output", "metadata"])
def test_private_text_is_found_in_sources_outputs_and_metadata(text, kind, place):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(text if place == "source" else "x = 1", execution_count=1)
    if place == "output":
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text)]
    if place == "metadata":
        cell.metadata["tags"] = [text]
    nb.cells = [cell]
    found = private(nb)
    assert len(found) == 1 and kind in found[0]


def test_private_finds_widget_state_user_names_and_unknown_metadata(monkeypatch):
    nb = made_up_notebook()  # widget state in metadata and a widget view in an output
    found = private(nb)
    assert any("metadata holds widgets" in p for p in found)
    assert any("widget state or view (application/vnd.jupyter.widget-view+json)" in p for p in found)
    assert any("cell 0: metadata holds execution" in p for p in found)

    monkeypatch.setenv("USER", "dana_k")
    nb = nbformat.v4.new_notebook()
    nb.metadata["authors"] = [{"name": "Dana"}]
    nb.cells = [nbformat.v4.new_markdown_cell("written by dana_k on her laptop")]
    found = private(nb)
    assert any("metadata holds authors" in p for p in found)
    assert any("a metadata field naming a person (authors)" in p for p in found)
    assert any("this machine's user name 'dana_k'" in p for p in found)


@pytest.mark.parametrize(
    "text",
    [
        "load_dataset('mnist1d', root=DATA_DIR)  # data/ at the repository's root",
        "see notebooks/06_playground.ipynb and benchmarks/results/peers.md",
        "ratio: 1.03 × ce; lr 0.1; x: [B, C]",
        "commit 9f86d08",  # a short hash is no secret
        "the token of a text corpus; vocabulary[token] = id",
    ],
)
def test_ordinary_text_is_not_private(text):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(text)]
    assert private(nb) == []


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
