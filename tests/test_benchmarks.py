"""benchmarks/cost.py's bookkeeping (what it measures is timing, which tests do not assert), and the tuned
table that benchmarks/tuned_presets.py writes."""

import importlib.util
from pathlib import Path

import pandas as pd

from lstsd_edu.data import load_dataset
from lstsd_edu.experiments import PRESETS, preset

ROOT = Path(__file__).resolve().parent.parent
SPEC = importlib.util.spec_from_file_location("cost", ROOT / "benchmarks" / "cost.py")
cost = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(cost)


def test_methods_take_turns_and_ratios_are_per_round():
    config = preset("digits", epochs=3)
    data = load_dataset(config.dataset, config.noise, config.noise_kind)
    df = cost.measure(["lstsd", "ce", "born_again"], config, data, repeats=2, epochs=3)
    assert len(df) == 2 * 3 * 3  # repeats × rounds × methods
    order = ["ce", "lstsd", "born_again"]  # CE first, then as asked
    for (_, r), one_round in df.groupby(["repeat", "round"], sort=False):
        assert one_round.method.tolist() == order[r % 3 :] + order[: r % 3]  # every method, rotating
    rounds = df.set_index(["repeat", "round", "method"]).seconds.unstack("method")
    ratios = df.set_index(["repeat", "round", "method"]).ratio.unstack("method")
    assert (ratios["ce"] == 1.0).all()
    assert (ratios["lstsd"] == rounds["lstsd"] / rounds["ce"]).all()
    assert (rounds["born_again"] > rounds["ce"]).all()  # generation 1's epoch (CE's) is counted in
    table = cost.summarise(df, ["lstsd", "ce", "born_again"])
    assert table.index.tolist() == ["ce", "lstsd", "born_again"]
    assert table.loc["ce", "ratio_to_ce"] == 1.0
    assert (table.ratio_min <= table.ratio_to_ce).all() and (table.ratio_to_ce <= table.ratio_max).all()
    assert (table.ratio_min <= table.ci95_low).all() and (table.ci95_low <= table.ci95_high).all()
    assert (table.ci95_high <= table.ratio_max).all() and table.loc["ce", "ci95_high"] == 1.0


def test_the_tuned_table_is_the_one_the_tuning_results_give():
    """Each method's `tuned` is written from benchmarks/results/tuning_*/trials.csv; a result committed
    without rewriting it (or an edit by hand) would make the presets differ from the tuning files."""
    spec = importlib.util.spec_from_file_location("tuned_presets", ROOT / "benchmarks" / "tuned_presets.py")
    tuned_presets = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tuned_presets)
    files = tuned_presets.targets()
    assert {path.name for path in files} >= {"base.py", "lstsd.py", "born_again.py"}  # every method's file
    for path, tables in files.items():
        assert path.read_text() == tuned_presets.rewritten(path, tables), path
    config = preset("mnist1d", "lstsd", epochs=PRESETS["mnist1d"].epochs)  # whole length, also in fast mode
    written = tuned_presets.chosen_settings(pd.read_csv(ROOT / "benchmarks/results/tuning_mnist1d/trials.csv"))
    assert {k: getattr(config, k) for k in written["lstsd"]} == written["lstsd"]
