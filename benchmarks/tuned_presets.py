"""Write each method's `tuned` table from the tuning results: its chosen settings per dataset.

    .venv/bin/python benchmarks/tuned_presets.py           # reads benchmarks/results/tuning_*/trials.csv
    .venv/bin/python benchmarks/tuned_presets.py --check   # exit 1 if a method file differs from the results

Every registered method keeps, in its own class, what the search chose in its `search_space` on
each dataset (`Method.tuned`; `experiments.preset(dataset, method)` applies it). This script
rewrites that one assignment in each method's file (or adds it after `search_space` the first
time), leaving the rest of the file as it is. The values are read back exactly (pandas reads floats
back to the last bit) and chosen as `lstsd-edu tune` chose them (`tuning.chosen_settings`): a
preset built from them is the very setting whose fresh-seed runs the tuning file reports, so
`lstsd-edu compare` with the same seeds gives the same numbers. The lines are written already
formatted as ruff would (one dataset per line, wrapped at the project's line length).
"""

from __future__ import annotations

import argparse
import ast
import inspect
import json
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from lstsd_edu.methods import METHODS
from lstsd_edu.tuning import chosen_settings

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
WIDTH = 120
COMMENT = "# chosen on validation by `lstsd-edu tune` (benchmarks/tuned_presets.py writes it)"


def chosen() -> dict[str, dict[str, dict]]:
    """method -> dataset -> chosen values, from every benchmarks/results/tuning_<dataset>/trials.csv."""
    out: dict[str, dict[str, dict]] = {}
    for folder in sorted(f for f in RESULTS.glob("tuning_*") if (f / "trials.csv").exists()):
        dataset = folder.name.removeprefix("tuning_")
        for method, values in chosen_settings(pd.read_csv(folder / "trials.csv")).items():
            out.setdefault(method, {})[dataset] = values
    return out


def entry(key: str, values: dict, indent: str) -> list[str]:
    """One dataset's line, or one line per setting when it does not fit."""
    pairs = [f"{json.dumps(k)}: {json.dumps(v) if isinstance(v, str) else repr(v)}" for k, v in values.items()]
    one = f"{indent}{json.dumps(key)}: {{{', '.join(pairs)}}},"
    if len(one) <= WIDTH:
        return [one]
    return [f"{indent}{json.dumps(key)}: {{", *(f"{indent}    {pair}," for pair in pairs), f"{indent}}},"]


def assignment(tables: dict[str, dict], indent: str = "    ") -> list[str]:
    if not tables:
        return [f"{indent}tuned = {{}}  {COMMENT}"]
    lines = [f"{indent}tuned = {{  {COMMENT}"]
    for dataset in sorted(tables):
        lines += entry(dataset, tables[dataset], indent + "    ")
    return [*lines, f"{indent}}}"]


def rewritten(path: Path, tables: dict[str, dict[str, dict]]) -> str:
    """`path` with the `tuned` assignment of each of its registered classes written from `tables`
    (class name -> dataset -> values)."""
    lines = path.read_text().splitlines()
    edits = []  # (first line, last line, new lines), 0-based and inclusive, applied bottom-up
    for node in ast.parse("\n".join(lines)).body:
        if not (isinstance(node, ast.ClassDef) and node.name in tables):
            continue
        assigned = {
            target.id: statement
            for statement in node.body
            if isinstance(statement, ast.Assign)
            for target in statement.targets
            if isinstance(target, ast.Name)
        }
        new = assignment(tables[node.name])
        if "tuned" in assigned:
            edits.append((assigned["tuned"].lineno - 1, assigned["tuned"].end_lineno - 1, new))
        else:  # the first time: after the search space, or the colour, or the name
            anchor = next(assigned[key] for key in ("search_space", "colour", "name") if key in assigned)
            edits.append((anchor.end_lineno, anchor.end_lineno - 1, new))
    for first, last, new in sorted(edits, reverse=True):
        lines[first : last + 1] = new
    return "\n".join(lines) + "\n"


def targets() -> dict[Path, dict[str, dict[str, dict]]]:
    """Each registered method's file -> class name -> its tuned table."""
    tables = chosen()
    files: dict[Path, dict[str, dict[str, dict]]] = {}
    for name, cls in METHODS.items():
        files.setdefault(Path(inspect.getsourcefile(cls)), {})[cls.__name__] = tables.get(name, {})
    return files


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing; exit 1 on a difference")
    args = parser.parse_args()
    differ = []
    for path, tables in targets().items():
        text = rewritten(path, tables)
        if path.read_text() != text:
            differ.append(path.relative_to(ROOT))
            if not args.check:
                path.write_text(text)
    verb = "differ from" if args.check else "rewritten from"
    print(
        f"{', '.join(map(str, differ))} {verb} the tuning results" if differ else "every method's tuned table matches"
    )
    return 1 if args.check and differ else 0


if __name__ == "__main__":
    sys.exit(main())
