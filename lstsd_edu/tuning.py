"""One tuning protocol for every method: the same budget, chosen on validation, tested on fresh seeds.

    result = tune(["ce", "lstsd"], preset("mnist1d", noise=0.3), trials=24)
    print(report(result))

A comparison is only as fair as the effort spent on each side of it. So every method gets

1. **the same search**: `trials` settings each — its preset's values first, then random draws
   from its own space (`Method.search_space`, declared beside the method; `space.py`), which
   always includes the optimiser's learning rate and weight decay (a well-regularised baseline
   is a different baseline);
2. **the same judge**: each setting is trained with the tuning seeds on the training split and
   scored by its validation accuracy at the epoch chosen on validation (`selected_val_acc`, i.e.
   with early stopping), on labels with the same noise as the training labels. The test split is
   *removed* from the data the search trains on (`data.test = None`), so nothing in the search
   can read a test label;
3. **fresh seeds**: the winning setting of each method is trained again with `fresh_seeds` (never
   used in the search), and only then is the test set read: the test accuracy at the epoch
   chosen on validation (`selected_test_acc`) and after the last epoch (`final_test_acc`).

`load(folder)` reads a result back from the files `lstsd-edu tune` writes (`trials.csv`,
`fresh.csv`), so that a chapter can read a committed tuning with the same functions.

`by_method` and `paired_differences` do the same for any summary of runs (one row per method ×
seed, as `experiments.compare` returns it).

`report` turns a result into markdown: the spaces, the trial counts, the chosen values, mean ±
standard deviation and a 95% t-interval over the fresh seeds, and each method's difference from
LSTSD, paired by seed, with its 95% interval; a difference whose interval holds 0 is a **tie**.

Every run goes through `runs.execute`, so a search caches each finished run on disk, resumes where
it stopped, shows a progress bar and trains `jobs` runs side by side.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from .config import Config
from .errors import ConfigError, Range
from .experiments import PRESETS, load_data
from .methods import METHOD, METHODS
from .runs import execute

TRIALS = Range(1, 10_000, integer=True)


def _rng(method: str, seed: int) -> np.random.Generator:
    """A generator of its own per method and search seed: adding a method changes no other's draws."""
    digest = hashlib.sha256(f"{method}:{seed}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def candidates(method: str, base: Config, trials: int, seed: int = 0, fixed: dict | None = None) -> list[Config]:
    """`trials` settings for `method`: `base` first, then draws from the method's `search_space`;
    the settings in `fixed` are set on `base` and left out of the search.

    A draw that breaks a rule (w_long + w_short > 1, a lag or ramp not shorter than the run) is
    drawn again, so every candidate is a valid Config; the same (method, base, trials, seed) give
    the same candidates.
    """
    METHOD.check("method", method)
    TRIALS.check("trials", trials)
    fixed = fixed or {}
    base = replace(base, **fixed)
    rng = _rng(method, seed)
    space = {name: dist for name, dist in METHODS[method].search_space.items() if name not in fixed}
    out = [base.validate()]
    while len(out) < trials:
        draw = {name: dist.draw(rng) for name, dist in space.items()}
        # a teacher that never arrives or a ramp that never ends is not a setting: shorter runs
        # (a smoke test of 2 epochs) cap them instead of drawing again and again
        for name in ("lag", "ramp"):
            if name in draw:
                draw[name] = min(draw[name], max(base.epochs - 1, 1 if name == "lag" else 0))
        try:
            out.append(replace(base, **draw).validate())
        except ConfigError:
            continue  # e.g. w_long + w_short > 1
    return out


# -- the protocol ---------------------------------------------------------------------------------------


@dataclass
class TuningResult:
    """What `tune` found: every trial's score, each method's chosen setting, and the fresh runs."""

    trials: pd.DataFrame  # one row per method × trial: the drawn values and the validation score
    selected: dict[str, Config]  # method -> the chosen setting
    fresh: pd.DataFrame  # one summary row per method × fresh seed (test accuracies read here)
    base: Config
    tuning_seeds: tuple[int, ...]
    fresh_seeds: tuple[int, ...]


def tune(
    methods: list[str],
    base: Config,
    *,
    trials: int = 24,
    tuning_seeds: tuple[int, ...] = (0,),
    fresh_seeds: tuple[int, ...] = (1000, 1001, 1002, 1003, 1004),
    data=None,
    store=None,
    jobs: int = 1,
    progress: bool = True,
    search_seed: int = 0,
    fixed: dict[str, dict] | None = None,
) -> TuningResult:
    """Tune every method with the same budget on validation, then test the winners on fresh seeds.

    `base` is the starting setting (usually a preset); `data` defaults to `load_data(base)` and
    must have a validation split. Seeds used to search and seeds used to report are disjoint.
    `fixed` holds, per method, settings kept out of its search (e.g. {"lstsd": {"ramp": 0}}).
    """
    if not methods:
        raise ConfigError("methods must name at least one method; got none")
    overlap = sorted(set(tuning_seeds) & set(fresh_seeds))
    if overlap:
        raise ConfigError(f"fresh_seeds must not be used in tuning; both hold {overlap}")
    if not tuning_seeds or not fresh_seeds:
        raise ConfigError("tuning_seeds and fresh_seeds must each hold at least one seed")
    data = load_data(base) if data is None else data
    if data.val is None:
        raise ConfigError("tuning needs a validation split: set val_fraction > 0 (or pass data with a val part)")
    search_data = replace(data, test=None)  # the search cannot read a test label: there is none

    fixed = fixed or {}
    pool = {m: candidates(m, base, trials, search_seed, fixed.get(m)) for m in methods}
    labels = [(m, trial, s) for m in methods for trial in range(trials) for s in tuning_seeds]
    tasks = [(m, pool[m][trial], s) for m, trial, s in labels]
    outcomes = execute(tasks, search_data, store=store, jobs=jobs, progress=progress, desc="tuning")
    rows = []
    for (method, trial, seed), (summary, _) in zip(labels, outcomes, strict=True):
        drawn = {name: getattr(pool[method][trial], name) for name in METHODS[method].search_space}
        rows.append({"method": method, "trial": trial, "seed": seed, **drawn, "score": summary["selected_val_acc"]})
    frame = pd.DataFrame(rows)
    selected = {m: pool[m][best_trial(frame, m)] for m in methods}

    tasks = [(m, selected[m], s) for m in methods for s in fresh_seeds]
    fresh = pd.DataFrame(
        [summary for summary, _ in execute(tasks, data, store=store, jobs=jobs, progress=progress, desc="fresh seeds")]
    )
    return TuningResult(frame, selected, fresh, base, tuple(tuning_seeds), tuple(fresh_seeds))


def best_trial(trials: pd.DataFrame, method: str) -> int:
    """The trial of `method` with the best validation score, averaged over the tuning seeds; a
    diverged run scores NaN and loses; the first trial (the preset) wins a tie."""
    scores = trials[trials.method == method].groupby("trial", sort=True).score.mean().fillna(-math.inf)
    return int(scores.index[scores.to_numpy().argmax()])


def chosen_settings(trials: pd.DataFrame) -> dict[str, dict]:
    """Each method's chosen values of its searched settings, read back from a `trials` frame (the
    `trials.csv` that `lstsd-edu tune` writes): what each method's `tuned` holds."""
    out = {}
    for method in dict.fromkeys(trials.method):
        row = trials[(trials.method == method) & (trials.trial == best_trial(trials, method))].iloc[0]
        out[method] = {name: _as_field(name, row[name]) for name in METHODS[method].search_space}
    return out


def load(folder) -> TuningResult:
    """The result `lstsd-edu tune` wrote into `folder` (its `trials.csv` and `fresh.csv`), read back.

    Each method's chosen setting is rebuilt as `tune` chose it (`chosen_settings`), on the dataset's
    starting point (`experiments.PRESETS`) with the model, data settings and epochs the fresh runs
    record; the seeds are those the files hold. `fresh_table`, `differences` and `report` then read it
    as they read `tune`'s own result.
    """
    folder = Path(folder)
    missing = [name for name in ("trials.csv", "fresh.csv") if not (folder / name).is_file()]
    if missing:
        raise ConfigError(
            f"folder must hold the trials.csv and fresh.csv that `lstsd-edu tune` writes; {folder} lacks {missing}"
        )
    trials, fresh = pd.read_csv(folder / "trials.csv"), pd.read_csv(folder / "fresh.csv")
    first = fresh.iloc[0]
    base = replace(
        PRESETS[first.dataset],
        model=str(first.model),
        noise=float(first.noise),
        noise_kind=str(first.noise_kind),
        epochs=int(first.epochs),
    ).validate()
    selected = {method: replace(base, **values).validate() for method, values in chosen_settings(trials).items()}
    seeds = tuple(int(s) for s in dict.fromkeys(trials.seed)), tuple(int(s) for s in dict.fromkeys(fresh.seed))
    return TuningResult(trials, selected, fresh, base, *seeds)


def _as_field(name: str, value):
    """A CSV cell as the Config field `name` holds it (20.0 -> 20 for an integer field)."""
    kind = str(Config.__dataclass_fields__[name].type)
    return int(value) if "int" in kind else float(value) if "float" in kind else str(value)


# -- reading the result ---------------------------------------------------------------------------------


def interval(values: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """A t-interval for the mean of `values` (NaN for fewer than two values)."""
    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return math.nan, math.nan
    sem = values.std(ddof=1) / math.sqrt(len(values))
    if sem == 0:
        return float(values.mean()), float(values.mean())
    low, high = stats.t.interval(confidence, len(values) - 1, loc=values.mean(), scale=sem)
    return float(low), float(high)


def by_method(summary: pd.DataFrame, metric: str = "selected_test_acc") -> pd.DataFrame:
    """Per method of `summary` (one row per method × seed, as `compare` returns it, or a tuning's
    fresh runs): mean, standard deviation and 95% interval of `metric` over its seeds."""
    rows = []
    for method, part in summary.groupby("method", sort=False):
        values = part[metric].to_numpy(dtype=float)
        low, high = interval(values)
        rows.append(dict(method=method, mean=values.mean(), std=values.std(ddof=1), low=low, high=high, n=len(values)))
    return pd.DataFrame(rows).set_index("method")


def paired_differences(
    summary: pd.DataFrame, reference: str = "lstsd", metric: str = "selected_test_acc"
) -> pd.DataFrame:
    """`reference` minus each other method of `summary` (one row per method × seed), paired by seed:
    mean, 95% interval and a verdict (`better`, `worse`, or `tie` when the interval holds 0).
    Methods in the order they first appear; seeds one of the two lacks are left out."""
    table = summary.pivot_table(index="seed", columns="method", values=metric)
    if reference not in table:
        raise ConfigError(f"reference must be one of the methods ({', '.join(table.columns)}); got {reference!r}")
    rows = []
    for method in [m for m in dict.fromkeys(summary.method) if m != reference]:
        gap = (table[reference] - table[method]).dropna().to_numpy()
        low, high = interval(gap)
        verdict = "tie" if not (low > 0 or high < 0) else ("better" if low > 0 else "worse")
        rows.append(dict(method=method, difference=gap.mean(), low=low, high=high, verdict=verdict))
    return pd.DataFrame(rows).set_index("method")


def fresh_table(result: TuningResult, metric: str = "selected_test_acc") -> pd.DataFrame:
    """Per method over the fresh seeds: mean, standard deviation and 95% interval of `metric`."""
    return by_method(result.fresh, metric)


def differences(result: TuningResult, reference: str = "lstsd", metric: str = "selected_test_acc") -> pd.DataFrame:
    """`reference` minus each other tuned method, paired by fresh seed (`paired_differences`)."""
    if reference not in result.selected:
        raise ConfigError(
            f"reference must be one of the tuned methods ({', '.join(result.selected)}); got {reference!r}"
        )
    return paired_differences(result.fresh, reference, metric)


def report(result: TuningResult, command: str = "") -> str:
    """The result as markdown: protocol, spaces, chosen values, fresh-seed tables, differences."""
    base = result.base
    counts = result.trials.groupby("method", sort=False).trial.nunique()
    lines = [
        f"# Tuning: {base.dataset}, {base.model}, noise {base.noise:g} {base.noise_kind}",
        "",
        *([f"Command: `{command}`", ""] if command else []),
        f"Protocol: {counts.iloc[0] if counts.nunique() == 1 else dict(counts)} trials per method "
        f"(the preset first, then random draws), each trained with seed(s) "
        f"{', '.join(map(str, result.tuning_seeds))} for {base.epochs} epochs and scored by validation accuracy "
        f"at the epoch chosen on validation ({base.val_fraction:.0%} of the training set held out, noisy labels). "
        f"The test split was removed from the data during the search. The chosen setting of each method was "
        f"then trained with fresh seeds {', '.join(map(str, result.fresh_seeds))}; only those runs read the "
        "test set.",
        "",
        "## Search spaces",
        "",
        "| method | trials | space |",
        "|---|---|---|",
    ]
    for method in result.selected:
        space = "; ".join(f"`{name}` {dist}" for name, dist in METHODS[method].search_space.items())
        lines.append(f"| `{method}` | {counts[method]} | {space} |")
    lines += ["", "## Chosen settings (best validation score)", "", "| method | score | setting |", "|---|---|---|"]
    scores = result.trials.groupby(["method", "trial"], sort=False).score.mean()
    for method, config in result.selected.items():
        values = ", ".join(f"{name}={_short(getattr(config, name))}" for name in METHODS[method].search_space)
        lines.append(f"| `{method}` | {scores.loc[method].max():.4f} | {values} |")
    for metric, title in (
        ("selected_test_acc", "Test accuracy at the epoch chosen on validation"),
        ("final_test_acc", "Test accuracy after the last epoch"),
    ):
        table = fresh_table(result, metric)
        lines += [
            "",
            f"## {title} (fresh seeds)",
            "",
            "| method | mean ± std | 95% interval | seeds |",
            "|---|---|---|---|",
        ]
        for method, r in table.iterrows():
            lines.append(f"| `{method}` | {r['mean']:.4f} ± {r['std']:.4f} | [{r.low:.4f}, {r.high:.4f}] | {r.n:.0f} |")
        if "lstsd" in result.selected and len(result.selected) > 1:
            diff = differences(result, "lstsd", metric)
            lines += ["", "LSTSD minus each method, paired by seed (95% interval; a tie when it holds 0):", ""]
            lines += ["| method | LSTSD − method | 95% interval | verdict |", "|---|---|---|---|"]
            for method, r in diff.iterrows():
                lines.append(f"| `{method}` | {r.difference:+.4f} | [{r.low:+.4f}, {r.high:+.4f}] | {r.verdict} |")
    return "\n".join(lines) + "\n"


def _short(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)
