"""Write `lstsd_edu/tuned.py` from the tuning results: each method's chosen settings per dataset.

    .venv/bin/python benchmarks/tuned_presets.py           # reads benchmarks/results/tuning_*/trials.csv
    .venv/bin/python benchmarks/tuned_presets.py --check   # exit 1 if tuned.py differs from the results

The values are read back exactly (pandas reads floats back to the last bit) and chosen as `lstsd-edu tune`
chose them (`tuning.chosen_settings`): a preset built from them is the very setting whose
fresh-seed runs the tuning file reports, so `lstsd-edu compare` with the same seeds gives the
same numbers. The module is written already formatted as ruff would (one method per line, wrapped
at the project's line length).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from lstsd_edu.tuning import chosen_settings

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
TARGET = ROOT / "lstsd_edu" / "tuned.py"
WIDTH = 120

HEADER = '''"""Each method's own settings per dataset, as `lstsd-edu tune` chose them (written by
`benchmarks/tuned_presets.py` from the tuning results; do not edit by hand).

The search gave every method the same number of trials and scored them on the noisy validation
split with the test split removed (see tuning.py); the file named above each dataset holds the
command, the search spaces, every trial and the fresh-seed test results. `experiments.preset(dataset,
method)` applies these values over the dataset's starting point; a dataset or method missing here
takes the starting point's values.
"""

'''


def entry(method: str, values: dict) -> list[str]:
    """One method's line, or one line per setting when it does not fit."""
    pairs = [f"{json.dumps(k)}: {json.dumps(v) if isinstance(v, str) else repr(v)}" for k, v in values.items()]
    one = f"        {json.dumps(method)}: {{{', '.join(pairs)}}},"
    if len(one) <= WIDTH:
        return [one]
    return [f"        {json.dumps(method)}: {{", *(f"            {pair}," for pair in pairs), "        },"]


def module_text() -> str:
    lines = ["TUNED: dict[str, dict[str, dict]] = {"]
    for folder in sorted(f for f in RESULTS.glob("tuning_*") if (f / "trials.csv").exists()):
        trials = pd.read_csv(folder / "trials.csv")
        dataset = json.dumps(folder.name.removeprefix("tuning_"))
        lines += [f"    # {folder.relative_to(ROOT)}/tuning.md", f"    {dataset}: {{"]
        for method, values in chosen_settings(trials).items():
            lines += entry(method, values)
        lines.append("    },")
    lines.append("}")
    return HEADER + "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing; exit 1 on a difference")
    args = parser.parse_args()
    text = module_text()
    if args.check:
        same = TARGET.exists() and TARGET.read_text() == text
        print(f"{TARGET.relative_to(ROOT)} {'matches' if same else 'differs from'} the tuning results")
        return 0 if same else 1
    TARGET.write_text(text)
    print(f"wrote {TARGET.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
