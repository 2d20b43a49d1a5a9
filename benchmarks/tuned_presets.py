"""Print `experiments.TUNED` from the tuning results: each method's chosen settings per dataset.

    .venv/bin/python benchmarks/tuned_presets.py          # reads benchmarks/results/tuning_*/trials.csv

The values are read back exactly (pandas reads floats back to the last bit) and chosen as `lstsd-edu tune`
chose them (`tuning.chosen_settings`): a preset built from them is the very setting whose
fresh-seed runs the tuning file reports, so `lstsd-edu compare` with the same seeds gives the
same numbers. Paste the output over `TUNED` in lstsd_edu/experiments.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from lstsd_edu.tuning import chosen_settings

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    print("TUNED: dict[str, dict[str, dict]] = {")
    for folder in sorted(f for f in RESULTS.glob("tuning_*") if (f / "trials.csv").exists()):
        trials = pd.read_csv(folder / "trials.csv")
        dataset = folder.name.removeprefix("tuning_")
        print(f"    # {folder.relative_to(RESULTS.parent.parent)}/tuning.md")
        print(f"    {dataset!r}: {{")
        for method, values in chosen_settings(trials).items():
            print(f"        {method!r}: {values!r},")
        print("    },")
    print("}")


if __name__ == "__main__":
    main()
