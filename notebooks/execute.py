"""Execute the tutorial notebooks in place, in full mode, and leave them clean for committing.

    .venv/bin/python notebooks/execute.py                          # every notebooks/NN_*.ipynb
    .venv/bin/python notebooks/execute.py notebooks/04_*.ipynb     # just these

Learners read the committed notebooks on the web, so they keep their outputs; but a notebook
executed by a kernel also carries things that change from run to run or cannot be shown without
the kernel. For each notebook this script

1. runs every cell with nbclient in a fresh `python3` kernel, from the notebooks folder, with the
   inline matplotlib backend (so figures are stored as PNG), one thread (as under nbval, see
   conftest.py) and full-length training (it refuses to run when `LSTSD_EDU_FAST` is set:
   fast-mode numbers are not meant to be read);
2. strips widget state: the notebook's `metadata.widgets`, and every widget-view output (a model
   id that points at that state — a reader without the kernel would see an error, not a slider;
   each interactive chapter shows a static copy of its view's figure right after it);
3. strips execution timestamps from cell metadata;
4. writes the measured wall time into the first cell's run-time line, if it has the form
   "**Run time**: about 40 s on 2 CPU cores (measured by `notebooks/execute.py`, …)";
5. fails (and writes nothing for that notebook) if a cell raised, or if an output still holds a
   volatile value: a memory address, a date or clock time, an absolute path of this machine, a
   progress bar.

`problems(nb)` is the same check the test suite runs on every committed notebook
(tests/test_notebook_hygiene.py).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
VOLATILE = {
    "memory address": re.compile(r"0x[0-9a-fA-F]{6,}"),
    "date": re.compile(r"\b20\d\d-[01]\d-[0-3]\d\b"),
    "clock time": re.compile(r"\b[0-2]\d:[0-5]\d:[0-5]\d\b"),
    "absolute path": re.compile(r"(?<![\w.])/(?:home|tmp|work|Users|root|var/folders)/"),
    "progress bar": re.compile(r"\d+%\|"),
}
RUN_TIME = re.compile(
    r"\*\*Run time\*\*: about [^*\n]*? on \d+ CPU cores? "
    r"\(measured by `notebooks/execute\.py`[^)\n]*\)"
)
CELL_METADATA_DROPPED = ("execution", "ExecuteTime", "collapsed", "scrolled")


def notebooks(paths: list[str]) -> list[Path]:
    """The given notebooks, or every numbered chapter `notebooks/NN_*.ipynb`, in order."""
    if paths:
        return [Path(p).resolve() for p in paths]
    return sorted(HERE.glob("[0-9][0-9]_*.ipynb"))


def output_text(output: dict) -> str:
    """Everything textual an output shows: stream text, text/* and JSON data, tracebacks."""
    if output.get("output_type") == "stream":
        return output.get("text", "")
    if output.get("output_type") == "error":
        return "\n".join(output.get("traceback", []))
    data = output.get("data", {})
    return "\n".join(v if isinstance(v, str) else str(v) for k, v in data.items() if not k.startswith("image/"))


def problems(nb: nbformat.NotebookNode) -> list[str]:
    """What would make a committed notebook unclean: widget state and volatile output."""
    found = []
    if "widgets" in nb.metadata:
        found.append("metadata.widgets holds widget state")
    for i, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if WIDGET_VIEW in output.get("data", {}):
                found.append(f"cell {i}: a widget-view output (its state is not stored)")
            if output.get("output_type") == "error":
                found.append(f"cell {i}: an error output")
            text = output_text(output)
            for name, pattern in VOLATILE.items():
                match = pattern.search(text)
                if match:
                    found.append(f"cell {i}: {name} {match.group(0)!r} in the output")
    return found


def clean(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Drop widget state, widget-view outputs and execution timestamps (in place)."""
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        for key in CELL_METADATA_DROPPED:
            cell.metadata.pop(key, None)
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if WIDGET_VIEW not in o.get("data", {})]
    return nb


def describe_seconds(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def stamp_run_time(nb: nbformat.NotebookNode, seconds: float) -> None:
    """Write the measured time into the first cell's run-time line (if it has the standard form)."""
    cores, threads = os.cpu_count() or 1, os.environ.get("OMP_NUM_THREADS", "all")
    line = (
        f"**Run time**: about {describe_seconds(seconds)} on {cores} CPU cores (measured by "
        f"`notebooks/execute.py`, full mode, {threads} thread{'' if threads == '1' else 's'})"
    )
    nb.cells[0].source = RUN_TIME.sub(line, nb.cells[0].source)


def execute(path: Path, timeout: int) -> float:
    """Run one notebook, clean it, check it, write it back. Returns the wall time in seconds."""
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        record_timing=False,
        resources={"metadata": {"path": str(path.parent)}},
    )
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    clean(nb)
    stamp_run_time(nb, seconds)
    found = problems(nb)
    if found:
        raise RuntimeError(f"{path.name} is not clean:\n  " + "\n  ".join(found))
    nbformat.validate(nb)
    nbformat.write(nb, path)
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("paths", nargs="*", help="notebooks to run (default: notebooks/NN_*.ipynb)")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per cell (default 1800)")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(HERE.parent))
    from lstsd_edu.experiments import fast_mode

    if fast_mode():
        print("LSTSD_EDU_FAST is set: committed notebooks are executed in full mode; unset it.", file=sys.stderr)
        return 2
    # the kernel inherits this environment: draw PNGs with the inline backend even if the
    # caller set MPLBACKEND=Agg (as `make test` does); one thread, as under nbval
    # (notebooks/conftest.py explains why)
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    total = 0.0
    for path in notebooks(args.paths):
        print(f"{path.name:<34}", end="", flush=True)
        seconds = execute(path, args.timeout)
        total += seconds
        print(f"{seconds:7.1f} s")
    print(f"{'total':<34}{total:7.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
