"""Mislabel detection: LSTSD's per-sample records against confident learning (cleanlab).

    .venv/bin/python benchmarks/mislabel.py                     # the table: 2 data sets × seeds 1000–1004
    .venv/bin/python benchmarks/mislabel.py --quick             # a smoke run: 3 epochs, one seed
    .venv/bin/python benchmarks/mislabel.py --seeds 1000,1001

A user who wants to find the mislabeled samples of a data set reaches for cleanlab. An LSTSD run
keeps, for free, each sample's record of every epoch; do those records find the flipped labels as
well, and at what cost? Settings: 30%-noisy MNIST-1D and 40%-noisy digits (symmetric noise; the
settings of the peers table, digits the harder one: with 10 classes the given label is still the
most frequent one for every class at 40%, so the task stays learnable). Each seed draws its own
label noise (noise seed = seed) and its own models; the validation split (10% of the training
set, same noise) is carved after the noise, as always.

Detectors, with everything fixed before any number was seen:

* **LSTSD records**: one run of `preset(dataset, noise)` with diagnostics; score: the record's
  `margin` (`diagnostics.margin_detector` says why this one), flagged: margin > 0 (the student
  predicts another class than the given one).
* **CE, one run** (for reference: is it the records or LSTSD's training that detects?): one plain
  CE run of the same preset, read the same way from its prediction of the training set (eval
  mode, τ = 1). CE keeps no records, so this costs one forward pass over the training split.
* **cleanlab**: as its documentation prescribes, out-of-sample probabilities from 5-fold
  cross-validation (`experiments.cross_val_probs`: the same model and preset, trained with CE on
  4/5 of the training split, stratified folds), then cleanlab's defaults: the ranking of
  `cleanlab.rank.get_label_quality_scores` and the set of `cleanlab.filter.find_label_issues`.

Each is read at an epoch chosen on the noisy validation split (each run's, or each fold model's,
epoch of best validation accuracy, `experiments.selection`) and, fixed in advance, at the last
epoch. The flip mask is read only by `diagnostics.detection_quality`, to score the detectors:
ROC AUC of the score, precision and recall of the flagged set, its size. Cost: trainings on the
whole training split (cleanlab: 5 × 4/5 = 4), training seconds (the histories' `seconds`: the
training part of each epoch, as every cost in this project) and wall seconds of the whole
detector (training, evaluation, diagnostics, predictions and cleanlab), one thread.

Writes `<out>.csv` (one row per data set × seed × detector × epoch) and `<out>.md` (the table).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import cleanlab
import numpy as np
import pandas as pd
import torch
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lstsd_edu.data import load_dataset
from lstsd_edu.diagnostics import cleanlab_detector, detection_quality, label_margin, margin_detector
from lstsd_edu.experiments import cross_val_probs, fit_predicting, make_trainer, preset, selection, train

SETTINGS = (("mnist1d", 0.3), ("digits", 0.4))
SEEDS = (1000, 1001, 1002, 1003, 1004)
FOLDS = 5
LSTSD, CE, CLEANLAB = "LSTSD records, margin", "CE one run, margin", f"cleanlab, {FOLDS}-fold CE"
NAMES = {"mnist1d": "MNIST-1D", "digits": "digits"}


def detect(dataset: str, noise: float, seed: int, epochs: int | None) -> list[dict]:
    """Every detector on one noisy draw of `dataset`: one row per detector and epoch rule."""
    config = preset(dataset, noise=noise, epochs=epochs)
    data = load_dataset(dataset, noise, config.noise_kind, noise_seed=seed, val_fraction=config.val_fraction)
    labels, flipped = data.train.y.numpy(), data.train.flipped.numpy()
    rows = []

    def row(detector, rule, epoch, score_flagged, trainings, train_s, wall_s):
        quality = detection_quality(*score_flagged, flipped)
        rows.append(
            dict(dataset=dataset, noise=noise, seed=seed, detector=detector, epoch_rule=rule, epoch_read=epoch)
            | quality
            | dict(samples=len(labels), trainings=trainings, train_seconds=train_s, wall_seconds=wall_s)
        )

    start = time.perf_counter()
    run = train("lstsd", config, seed, diagnostics=True, data=data)
    wall, train_s = time.perf_counter() - start, run.history.seconds.sum()
    records = run.trainer.divergences
    for rule, epoch in (("validation", selection(run.history)["selected_epoch"]), ("last", config.epochs)):
        margin = records[records.epoch == epoch].sort_values("index").margin
        row(LSTSD, rule, str(epoch), margin_detector(margin), 1, train_s, wall)

    start = time.perf_counter()
    trainer = make_trainer("ce", config, seed, data=data)
    log_probs = fit_predicting(trainer, data.train)  # [E, N, C]
    wall, train_s = time.perf_counter() - start, trainer.history.seconds.sum()
    for rule, epoch in (("validation", selection(trainer.history)["selected_epoch"]), ("last", config.epochs)):
        margin = label_margin(log_probs[epoch - 1], data.train.y).numpy()
        row(CE, rule, str(epoch), margin_detector(margin), 1, train_s, wall)

    start = time.perf_counter()
    held_out = cross_val_probs("ce", config, data, folds=FOLDS, seed=seed)
    wall = time.perf_counter() - start  # the cleanlab calls are added to each row's wall time
    trainings = FOLDS * (FOLDS - 1) / FOLDS
    for rule, probs, epochs_read in (
        ("validation", held_out.probs, held_out.selected_epochs),
        ("last", held_out.last_probs, [config.epochs] * FOLDS),
    ):
        start = time.perf_counter()
        found = cleanlab_detector(labels, probs)
        spent = wall + time.perf_counter() - start
        epoch = "/".join(map(str, epochs_read))
        row(CLEANLAB, rule, epoch, found, trainings, held_out.seconds, spent)
    return rows


def mean_std(values: pd.Series, digits: int = 3) -> str:
    return f"{values.mean():.{digits}f} ± {values.std(ddof=1) if len(values) > 1 else 0.0:.{digits}f}"


def paired(difference: pd.Series) -> str:
    """Mean of per-seed differences with a 95% t-interval, and the verdict (0 inside: a tie)."""
    n, mean = len(difference), difference.mean()
    if n < 2:
        return f"{mean:+.3f} (one seed)"
    half = stats.t.ppf(0.975, n - 1) * difference.std(ddof=1) / np.sqrt(n)
    verdict = "tie" if mean - half <= 0 <= mean + half else ("LSTSD higher" if mean > 0 else "LSTSD lower")
    return f"{mean:+.3f} [{mean - half:+.3f}, {mean + half:+.3f}] {verdict}"


def markdown(frame: pd.DataFrame, command: str, minutes: float) -> str:
    seeds = sorted(frame.seed.unique())
    lines = [
        "# Mislabel detection: LSTSD's records against confident learning (cleanlab)",
        "",
        f"Command: `{command}` ({minutes:.0f} min in all)  ",
        f"Machine: {platform.machine()}, 1 torch thread, torch {torch.__version__}, cleanlab {cleanlab.__version__}.  ",
        f"Seeds: {', '.join(map(str, seeds))} (each its own label noise and models); mean ± std over seeds.",
        "",
        "Everything is fixed in advance: the score (`margin`, the student's preference for another",
        "class than the given one; cleanlab: its default label quality), the flagged set (margin > 0;",
        "cleanlab: `find_label_issues` with its defaults) and the epoch read (chosen on the noisy",
        "validation split, or the last). **The flip mask is used only to score the detectors** (AUC,",
        "precision, recall); nothing is chosen with it. A random pick flags flipped samples at the",
        "noise rate. Trainings count passes of training on the whole training split (cleanlab: 5 models",
        "on 4/5 of it); seconds are training seconds (the histories' `seconds`) and wall seconds of the",
        "whole detector, one thread, runs one after another on a shared machine.",
        "",
        "Read with two facts in mind. The presets' settings are LSTSD's: its weights were chosen on the",
        "validation accuracy of 30%-noisy MNIST-1D (noise seed 0, not these seeds) and digits reuses them;",
        "the CE run and cleanlab's fold models train with the same optimiser settings, not tuned for CE.",
        "And the two flagged sets are different operating points (margin > 0 flags what the model would",
        "predict otherwise; cleanlab sizes its set from the estimated noise): read precision and recall",
        "together.",
        "",
        "| data | detector | epoch read | ROC AUC | precision | recall | flagged | trainings | train s | wall s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (dataset, noise), setting in frame.groupby(["dataset", "noise"], sort=False):
        name = f"{NAMES.get(dataset, dataset)} {noise:.0%}"
        flipped = f"of {setting.samples.iloc[0]:,} ({setting.flipped.mean():.0f} flipped)"
        for (detector, rule), g in setting.groupby(["detector", "epoch_rule"], sort=False):
            trainings = "1" if g.trainings.iloc[0] == 1 else f"{FOLDS} × {FOLDS - 1}/{FOLDS} = {g.trainings.iloc[0]:g}"
            rule_name = "chosen on validation" if rule == "validation" else "last"
            lines.append(
                f"| {name} | {detector} | {rule_name} | {mean_std(g.auc)} | {mean_std(g.precision)} | "
                f"{mean_std(g.recall)} | {mean_std(g.flagged, 0)} {flipped} | {trainings} | "
                f"{g.train_seconds.mean():.0f} | {g.wall_seconds.mean():.0f} |"
            )
    lines += [
        "",
        "ROC AUC of LSTSD's records minus the other detector's, read by the same epoch rule, paired by",
        "seed (same noise draw): mean [95% t-interval]; an interval that holds 0 is a tie.",
        "",
        f"| data | epoch read | LSTSD − {CE} | LSTSD − {CLEANLAB} |",
        "|---|---|---|---|",
    ]
    for (dataset, noise), setting in frame.groupby(["dataset", "noise"], sort=False):
        auc = setting.pivot_table(index=["epoch_rule", "seed"], columns="detector", values="auc")
        for rule, rule_name in (("validation", "chosen on validation"), ("last", "last")):
            by_seed = auc.loc[rule]
            cells = [paired(by_seed[LSTSD] - by_seed[other]) for other in (CE, CLEANLAB)]
            lines.append(f"| {NAMES.get(dataset, dataset)} {noise:.0%} | {rule_name} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default=",".join(map(str, SEEDS)), help="comma-separated (default: 1000–1004)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 3 epochs, the first seed")
    parser.add_argument("--out", default="benchmarks/results/mislabel", help="output prefix")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    if args.quick:
        seeds = seeds[:1]
    torch.set_num_threads(1)
    start, rows = time.perf_counter(), []
    for dataset, noise in SETTINGS:
        for seed in seeds:
            rows += detect(dataset, noise, seed, epochs=3 if args.quick else None)
            done = pd.DataFrame(rows[-6:])
            print(
                f"{dataset:<8} seed {seed}: AUC "
                + ", ".join(f"{r.detector} ({r.epoch_rule}) {r.auc:.3f}" for r in done.itertuples())
                + f" [{time.perf_counter() - start:.0f} s]",
                flush=True,
            )
    frame = pd.DataFrame(rows)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(f"{out}.csv", index=False)
    command = "python benchmarks/mislabel.py " + " ".join(sys.argv[1:])
    Path(f"{out}.md").write_text(markdown(frame, command.strip(), (time.perf_counter() - start) / 60))
    print(markdown(frame, command.strip(), (time.perf_counter() - start) / 60))
    print(f"wrote {out}.csv, {out}.md")


if __name__ == "__main__":
    main()
