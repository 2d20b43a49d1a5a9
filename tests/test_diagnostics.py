"""lstsd_edu.diagnostics: the teachers' milestones against the buffer and the ramp, memorisation
counted by hand, gains over seeds against scipy's interval; the mislabel detector and the
out-of-sample probabilities confident learning needs (experiments.fit_predicting,
experiments.cross_val_probs).

The detector rules and the precision / recall / AUC arithmetic are checked against cases worked
out by hand; the cross-validation against its promise: every training sample predicted exactly
once, by a model that never trained on it (checked by which samples each model saw, and by
memorisation: random labels are learnt by heart in-sample and are at chance out of sample).
"""

import sys

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats
from torch import nn

from lstsd_edu import experiments
from lstsd_edu.buffer import SnapshotBuffer
from lstsd_edu.config import Config
from lstsd_edu.data import Dataset, TensorData
from lstsd_edu.diagnostics import (
    MEMORISATION,
    cleanlab_detector,
    detection_quality,
    label_margin,
    loss_weights,
    margin_detector,
    memorisation,
    milestones,
    seed_gain,
    teacher_schedule,
)
from lstsd_edu.errors import ConfigError
from lstsd_edu.experiments import cross_val_probs, fit_predicting, make_trainer, preset
from lstsd_edu.methods import SampleDistillation


# ---------------------------------------------------------------------------------------------
# Milestones
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode, lag", [("sliding", 1), ("sliding", 5), ("phase", 3), ("phase", 4)])
def test_milestones_are_where_the_buffer_first_gives_teachers(mode, lag):
    config = Config(lag=lag, long_mode=mode, ramp=6, epochs=20)
    marks = milestones(config)
    # a real buffer, filled epoch by epoch as training fills it: the first epochs with valid teachers
    buffer = SnapshotBuffer(1, 3, lag, mode)
    index = torch.zeros(1, dtype=torch.long)
    first = {}
    for e in range(config.epochs):
        valid = buffer.teachers(e, index).valid[:, 0]  # [long, short]
        for name, has in (("long", valid[0]), ("short", valid[1])):
            if has and name not in first:
                first[name] = e + 1  # 1-based, as the history
        buffer.record(e, index, torch.zeros(1, 3).log_softmax(1))
    assert marks["short"] == first["short"] == 2
    assert marks["long"] == first["long"]
    assert marks["long"] == (lag + 1)  # sliding: L + 1; phase: the second phase's first epoch
    schedule = teacher_schedule(lag, mode, config.epochs)
    assert marks["long"] == schedule[schedule.long].epoch.min()


def test_the_first_long_term_teacher_is_the_first_record_sliding_and_the_first_phase_end_phase():
    for mode, teacher in (("sliding", 0), ("phase", 3)):  # 0-based epochs, lag 4
        buffer = SnapshotBuffer(1, 2, 4, mode)
        marks = milestones(Config(lag=4, long_mode=mode, epochs=12))
        assert marks["long"] == 5
        assert buffer.long_epoch(marks["long"] - 1) == teacher
        assert buffer.long_epoch(marks["long"] - 2) < 0  # the epoch before: no long-term teacher yet


@pytest.mark.parametrize("ramp", [1, 2, 7])
def test_ramp_milestone_is_the_first_epoch_at_full_weight(ramp):
    marks = milestones(Config(lag=3, ramp=ramp, epochs=20, w_long=0.4, w_short=0.3))
    method = SampleDistillation(0.4, 0.3, 3, ramp=ramp)
    e = marks["ramp"] - 1  # 0-based
    assert marks["ramp"] == ramp
    assert method.weights(e) == pytest.approx((0.4, 0.3))
    if e > 0:
        assert method.weights(e - 1)[0] < 0.4


def test_milestones_leave_out_no_ramp_and_what_comes_after_the_run():
    assert milestones(Config(lag=3, ramp=0, epochs=10)) == {"short": 2, "long": 4}
    assert milestones(Config(lag=10, ramp=20, epochs=10)) == {"short": 2}  # neither within 10 epochs
    assert milestones(Config(lag=2, ramp=0, epochs=1)) == {}


@pytest.mark.parametrize("mode, lag, ramp", [("sliding", 3, 5), ("phase", 3, 0), ("sliding", 1, 2), ("phase", 2, 7)])
def test_loss_weights_follow_the_ramp_and_give_a_missing_teachers_weight_to_ce(mode, lag, ramp):
    config = Config(lag=lag, long_mode=mode, ramp=ramp, epochs=12, w_long=0.4, w_short=0.3)
    weights = loss_weights(config)
    assert weights.epoch.tolist() == list(range(1, 13))
    for row in weights.itertuples():
        scale = min(1.0, row.epoch / ramp) if ramp else 1.0  # (e + 1) / ramp with e = epoch − 1
        assert (row.w_long, row.w_short) == pytest.approx((0.4 * scale, 0.3 * scale))
        assert row.w_ce == pytest.approx(1 - row.w_long * row.m_long - row.w_short * row.m_short)
    # a teacher exists from its milestone on; before any, the loss is all cross-entropy
    marks = milestones(config)
    assert weights.m_short.tolist() == [int(epoch >= marks["short"]) for epoch in weights.epoch]
    assert weights.m_long.tolist() == [int(epoch >= marks["long"]) for epoch in weights.epoch]
    assert weights.w_ce.iloc[0] == 1.0


def test_loss_weights_worked_out_by_hand():
    # lag 3, ramp 2: the ramp is at half in epoch 1; the short-term teacher comes in epoch 2, the
    # long-term one in epoch 4, and each time cross-entropy hands over that teacher's weight
    weights = loss_weights(Config(lag=3, ramp=2, epochs=6, w_long=0.4, w_short=0.3))
    assert weights.w_long.tolist() == pytest.approx([0.2, 0.4, 0.4, 0.4, 0.4, 0.4])
    assert weights.w_short.tolist() == pytest.approx([0.15, 0.3, 0.3, 0.3, 0.3, 0.3])
    assert weights.m_short.tolist() == [0, 1, 1, 1, 1, 1]
    assert weights.m_long.tolist() == [0, 0, 0, 1, 1, 1]
    assert weights.w_ce.tolist() == pytest.approx([1.0, 0.7, 0.7, 0.3, 0.3, 0.3])


# ---------------------------------------------------------------------------------------------
# Memorisation
# ---------------------------------------------------------------------------------------------
class Predicts(nn.Module):
    """A model whose prediction for a sample is the class written in its input."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.dropout = nn.Dropout(0.5)  # would scramble nothing, but shows whether eval mode was used

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = nn.functional.one_hot(x[:, 0].long(), self.num_classes).float()  # [B, C]
        assert not self.training, "memorisation evaluates in eval mode"
        return self.dropout(logits)


def test_memorisation_counts_what_the_model_predicts():
    clean_y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    y = torch.tensor([1, 1, 0, 2, 1, 2, 0, 2])  # samples 0, 2, 3 and 7 flipped
    flipped = y != clean_y
    predicted = torch.tensor([1, 1, 2, 0, 0, 2, 0, 1])  # 0: given; 2: true; 3: true; 7: true
    train = TensorData(predicted[:, None].float(), y, clean_y, flipped)
    model = Predicts(3).train()
    shares = memorisation(model, train, batch_size=3)
    assert tuple(shares) == MEMORISATION
    assert shares["flipped_as_given"] == pytest.approx(1 / 4)
    assert shares["flipped_as_true"] == pytest.approx(3 / 4)
    assert shares["clean_correct"] == pytest.approx(3 / 4)  # samples 1, 5, 6 right; 4 wrong
    assert model.training  # the mode it came in with


def test_memorisation_without_flipped_samples_is_nan_for_them():
    y = torch.tensor([0, 1, 2])
    train = TensorData(y[:, None].float(), y, y.clone(), torch.zeros(3, dtype=torch.bool))
    shares = memorisation(Predicts(3), train)
    assert np.isnan(shares["flipped_as_given"]) and np.isnan(shares["flipped_as_true"])
    assert shares["clean_correct"] == 1.0


# ---------------------------------------------------------------------------------------------
# Gains over seeds
# ---------------------------------------------------------------------------------------------
def test_seed_gain_is_the_mean_spread_and_t_interval_of_each_cell():
    runs = pd.DataFrame(
        {
            "lag": [2, 2, 2, 5, 5, 5],
            "seed": [0, 1, 2, 0, 1, 2],
            "gain": [0.04, 0.06, 0.05, 0.03, -0.02, 0.01],
        }
    )
    cells = seed_gain(runs, ["lag"])
    assert cells.lag.tolist() == [2, 5] and cells.seeds.tolist() == [3, 3]
    for row, (_, group) in zip(cells.itertuples(), runs.groupby("lag")):
        gains = group.gain.to_numpy()
        assert row.gain == pytest.approx(gains.mean())
        assert row.spread == pytest.approx(gains.std(ddof=1))
        low, high = stats.ttest_1samp(gains, 0.0).confidence_interval(0.95)
        assert (row.low, row.high) == pytest.approx((low, high))
        assert row.ratio == pytest.approx(row.gain / row.spread)
        assert row.tie == (low <= 0 <= high)
    assert cells.tie.tolist() == [False, True]


def test_seed_gain_without_spread_and_with_one_seed():
    same = pd.DataFrame({"lag": [1, 1, 2, 2], "gain": [0.02, 0.02, 0.0, 0.0]})
    cells = seed_gain(same, ["lag"])
    assert cells.low.tolist() == cells.high.tolist() == cells.gain.tolist()
    assert cells.tie.tolist() == [False, True] and np.isinf(cells.ratio.iloc[0]) and cells.ratio.iloc[1] == 0
    with pytest.raises(ConfigError, match="seeds must be at least 2"):
        seed_gain(pd.DataFrame({"lag": [1], "gain": [0.1]}), ["lag"])


# ---------------------------------------------------------------------------------------------
# The margin and the flagged-set rule
# ---------------------------------------------------------------------------------------------
def test_label_margin_by_hand():
    log_p = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.5, 0.5, 0.0]]).clamp_min(1e-9).log()
    labels = torch.tensor([0, 0, 1])
    want = torch.tensor(
        [
            np.log(0.2) - np.log(0.7),  # the given class wins: < 0
            np.log(0.6) - np.log(0.1),  # class 2 preferred to the given 0: > 0
            0.0,  # a tie with class 0
        ],
        dtype=torch.float32,
    )
    torch.testing.assert_close(label_margin(log_p, labels), want)


def test_label_margin_sign_does_not_depend_on_temperature():
    logits = torch.randn(50, 5, generator=torch.Generator().manual_seed(0))
    labels = torch.randint(0, 5, (50,), generator=torch.Generator().manual_seed(1))
    at_1 = label_margin(logits.log_softmax(1), labels)
    at_2 = label_margin((logits / 2).log_softmax(1), labels)
    torch.testing.assert_close(at_2, at_1 / 2)


def test_margin_detector_flags_exactly_a_prediction_other_than_the_given_label():
    score, flagged = margin_detector([-1.0, 0.0, 0.5, float("nan"), 3.0])
    assert flagged.tolist() == [False, False, True, False, True]  # 0 (a tie) and NaN are not flagged
    np.testing.assert_array_equal(score[[0, 1, 2, 4]], [-1.0, 0.0, 0.5, 3.0])
    # on records without ties: flagged <=> the student's argmax is not the given label
    g = torch.Generator().manual_seed(0)
    log_q = torch.randn(200, 10, generator=g).log_softmax(1)
    labels = torch.randint(0, 10, (200,), generator=g)
    _, flagged = margin_detector(label_margin(log_q, labels).numpy())
    assert flagged.tolist() == (log_q.argmax(1) != labels).tolist()


# ---------------------------------------------------------------------------------------------
# Scoring a detector against the flip mask
# ---------------------------------------------------------------------------------------------
def test_detection_quality_by_hand():
    flipped = [True, True, False, False, False, True]
    score = [0.9, 0.3, 0.8, 0.1, 0.2, float("nan")]  # the last sample has no score
    flagged = [True, False, True, False, False, True]
    q = detection_quality(score, flagged, flipped)
    # AUC over the 5 scored samples: flipped {0.9, 0.3} against clean {0.8, 0.1, 0.2}:
    # 0.9 beats all 3, 0.3 beats 0.1 and 0.2: 5 of the 2 × 3 = 6 pairs
    assert q["auc"] == pytest.approx(5 / 6)
    assert q["precision"] == pytest.approx(2 / 3)  # flagged {0, 2, 5}: 0 and 5 flipped
    assert q["recall"] == pytest.approx(2 / 3)  # flipped {0, 1, 5}: 0 and 5 flagged
    assert (q["flagged"], q["flipped"]) == (3, 3)


def test_detection_quality_with_nothing_flagged_or_flipped():
    q = detection_quality([0.1, 0.2], [False, False], [True, False])
    assert np.isnan(q["precision"]) and q["recall"] == 0.0 and q["flagged"] == 0
    q = detection_quality([0.1, 0.2], [True, False], [False, False])
    assert q["precision"] == 0.0 and np.isnan(q["recall"]) and np.isnan(q["auc"])


# ---------------------------------------------------------------------------------------------
# Confident learning (cleanlab)
# ---------------------------------------------------------------------------------------------
def test_cleanlab_detector_finds_confident_disagreements():
    pytest.importorskip("cleanlab", reason='cleanlab is optional: pip install "lstsd-edu[mislabel]"')
    rng = np.random.default_rng(0)
    n, c = 300, 3
    true = np.arange(n) % c
    probs = np.full((n, c), 0.05)
    probs[np.arange(n), true] = 0.9  # a confident model that knows the true classes
    flipped = rng.uniform(size=n) < 0.2
    labels = np.where(flipped, (true + 1) % c, true)
    score, flagged = cleanlab_detector(labels, probs)
    np.testing.assert_allclose(score, 1 - probs[np.arange(n), labels])  # 1 − self-confidence
    assert flagged.tolist() == flipped.tolist()


def test_cleanlab_detector_says_how_to_install_cleanlab(monkeypatch):
    monkeypatch.setitem(sys.modules, "cleanlab", None)  # as if it were not installed
    monkeypatch.setitem(sys.modules, "cleanlab.filter", None)
    with pytest.raises(ImportError, match=r"lstsd-edu\[mislabel\]"):
        cleanlab_detector([0, 1], [[0.9, 0.1], [0.1, 0.9]])


# ---------------------------------------------------------------------------------------------
# Out-of-sample probabilities (experiments.fit_predicting, experiments.cross_val_probs)
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def random_labels():
    """200 random inputs with random labels: nothing to learn but the samples themselves, so a
    model that trained on a sample knows its label and one that did not is at chance."""
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(250, 8, generator=g), torch.arange(250) % 4
    y = y[torch.randperm(250, generator=g)]
    return Dataset.from_arrays(x[:200], y[:200], x[200:], y[200:], val_fraction=0.1)


def memorising_config(epochs=40):
    return preset("mnist1d", model="mlp", width=128, epochs=epochs, batch_size=30, lr=0.1, weight_decay=0.0)


def test_fit_predicting_trains_exactly_as_fit(random_labels):
    config = memorising_config(epochs=4)
    plain = make_trainer("ce", config, seed=3, data=random_labels)
    plain.fit()
    watched = make_trainer("ce", config, seed=3, data=random_labels)
    log_probs = fit_predicting(watched, random_labels.val)
    assert log_probs.shape == (4, len(random_labels.val), 4)
    assert plain.history.drop(columns="seconds").equals(watched.history.drop(columns="seconds"))
    torch.testing.assert_close(log_probs[-1], plain.predict(random_labels.val).log_softmax(1))


def test_cross_val_probs_predicts_each_sample_once_from_a_model_that_never_saw_it(random_labels, monkeypatch):
    trainers = []

    def recording_make_trainer(*args, **kwargs):
        trainers.append(make_trainer(*args, **kwargs))
        return trainers[-1]

    monkeypatch.setattr(experiments, "make_trainer", recording_make_trainer)
    train = random_labels.train
    out = cross_val_probs("ce", memorising_config(), random_labels, folds=5, seed=0)

    n = len(train)
    assert out.probs.shape == out.last_probs.shape == (n, 4)
    np.testing.assert_allclose(out.probs.sum(1), 1.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(out.last_probs.sum(1), 1.0, rtol=0, atol=1e-12)
    assert sorted(np.bincount(out.fold).tolist()) == [n // 5] * 5  # five folds, every sample in one
    assert len(trainers) == 5 and len(out.selected_epochs) == 5
    assert all(1 <= e <= 40 for e in out.selected_epochs)
    assert out.seconds == pytest.approx(sum(t.history.seconds.sum() for t in trainers))
    y = train.y.numpy()
    for k, trainer in enumerate(trainers):
        # which of the training samples fold k's model trained on: match its inputs row by row
        seen = (trainer.data.train.x[:, None, :] == train.x[None]).all(-1).nonzero()[:, 1].numpy()  # [M]
        assert len(seen) == n - n // 5
        assert set(seen) == set(np.flatnonzero(out.fold != k)), "trained on every other fold, and only on them"
        # memorised in-sample: the given (random) labels of the samples it trained on
        in_sample = trainer.predict(trainer.data.train).softmax(1).numpy()
        assert (in_sample.argmax(1) == trainer.data.train.y.numpy()).mean() > 0.9
    # out of sample, the same models are at chance on random labels (1/4), far from memorised
    assert out.last_probs[np.arange(n), y].mean() < 0.4
    assert (out.last_probs.argmax(1) == y).mean() < 0.45
