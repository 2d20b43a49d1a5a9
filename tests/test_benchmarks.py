"""benchmarks/cost.py's bookkeeping (what it measures is timing, which tests do not assert), the tuned
tables that benchmarks/tuned_presets.py writes, and the settings flags of the benchmarks that train."""

import dataclasses
import importlib.util
from pathlib import Path

import pandas as pd
import pytest

from lstsd_edu.data import load_dataset
from lstsd_edu.errors import ConfigError
from lstsd_edu.experiments import PRESETS, preset

ROOT = Path(__file__).resolve().parent.parent


def benchmark(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


cost = benchmark("cost")


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


@pytest.mark.parametrize("name", ["cost", "sweep", "gpu"])
def test_benchmarks_that_train_take_every_setting_as_lstsd_edu_train_does(name):
    from lstsd_edu.cli import build_parser
    from lstsd_edu.config import Config

    def setting_flags(parser):
        names = {f.name for f in dataclasses.fields(Config)}
        return {a.dest: a.option_strings for a in parser._actions if a.dest in names}

    train = next(a for a in build_parser()._actions if a.dest == "command").choices["train"]
    flags = setting_flags(benchmark(name).build_parser())
    assert flags == setting_flags(train) and set(flags) == {f.name for f in dataclasses.fields(Config)}


def test_cost_flags_become_each_methods_config():
    from lstsd_edu.cli import config_from

    args = cost.build_parser().parse_args(["--tuned", "--lr", "0.05", "--pskd-alpha", "0.5"])
    config = config_from(args, "lstsd")
    assert (config.noise, config.epochs, config.lr, config.pskd_alpha) == (0.3, 12, 0.05, 0.5)  # flags win
    assert config.w_long == preset("mnist1d", "lstsd").w_long  # the rest is LSTSD's tuned preset


def test_gpu_checks_its_settings_before_it_looks_for_a_gpu(monkeypatch, capsys):
    gpu = benchmark("gpu")
    for argv, message in [
        (["--dataset", "mnist1d"], "dataset must be one of cifar10, cifar100"),
        (["--warmup", "5"], "warmup must be an integer in \\[0, 4\\]"),
        (["--lag", "0"], "lag must be"),
    ]:
        monkeypatch.setattr("sys.argv", ["gpu.py", *argv])
        with pytest.raises(ConfigError, match=message):
            gpu.main()
