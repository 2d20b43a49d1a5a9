"""Write the reference histories that `tests/test_reference.py` compares against.

    python tests/reference/make_reference.py          # rewrites tests/reference/histories.csv

Every method on 30%-noisy MNIST-1D, seed 0, 12 epochs, with lag 4 and ramp 4 so that both teachers
arrive inside the run, plus LSTSD's `phase` mode and `topk` records. The numbers are written with
17 significant digits, which read back as the same floats. Rewrite the file only when a change is
*meant* to change training, and say so where the change is described.
"""

from __future__ import annotations

import platform
import sys
from pathlib import Path

import pandas as pd
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

COLUMNS = ["train_loss", "train_acc", "test_loss", "test_acc"]
# (label, method, Config overrides)
CASES = [(m, m, {}) for m in ("ce", "ls", "short", "long", "lstsd", "snapshot", "born_again", "pskd", "te")]
CASES += [("lstsd_phase", "lstsd", {"long_mode": "phase"}), ("lstsd_topk", "lstsd", {"storage": "topk", "k": 3})]


def reference_config(**overrides):
    from lstsd_edu.experiments import preset

    # no validation split: the reference predates it, and the training set stays the whole one
    return preset("mnist1d", noise=0.3, epochs=12, lag=4, ramp=4, val_fraction=0.0, device="cpu", **overrides)


def histories() -> pd.DataFrame:
    from lstsd_edu.experiments import train

    torch.set_num_threads(1)
    frames = []
    for label, method, overrides in CASES:
        run = train(method, reference_config(**overrides), seed=0)
        frames.append(run.history[["epoch", *COLUMNS]].assign(case=label))
    return pd.concat(frames, ignore_index=True)[["case", "epoch", *COLUMNS]]


def platform_tag() -> str:
    """What the bits depend on: torch's version and the CPU's vector instructions."""
    return f"torch {torch.__version__} · {platform.machine()} · {torch.backends.cpu.get_cpu_capability()}"


if __name__ == "__main__":
    frame = histories()
    (HERE / "platform.txt").write_text(platform_tag() + "\n")
    frame.to_csv(HERE / "histories.csv", index=False, float_format="%.17g")
    print(f"wrote {HERE / 'histories.csv'} ({len(frame)} rows) on {platform_tag()}")
