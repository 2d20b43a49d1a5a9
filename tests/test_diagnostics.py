"""lstsd_edu.diagnostics: the teachers' milestones against the buffer and the ramp, memorisation
counted by hand, and gains over seeds against scipy's interval."""

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats
from torch import nn

from lstsd_edu.buffer import SnapshotBuffer
from lstsd_edu.config import Config
from lstsd_edu.data import TensorData
from lstsd_edu.diagnostics import MEMORISATION, memorisation, milestones, seed_gain, teacher_schedule
from lstsd_edu.errors import ConfigError
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
