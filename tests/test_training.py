"""Training behaviour: zero-weight LSTSD is CE, determinism, resume equivalence, fallback, devices."""

import pytest
import torch

from lstsd_edu.data import load_dataset
from lstsd_edu.errors import ConfigError
from lstsd_edu.experiments import preset, train
from lstsd_edu.methods import SampleDistillation, build_method
from lstsd_edu.models import build_model
from lstsd_edu.trainer import Trainer, get_device, seed_everything


@pytest.fixture(scope="module")
def small_data():
    """A 512-sample slice of noisy MNIST-1D keeps each run to about a second."""
    data = load_dataset("mnist1d", noise=0.3)
    from dataclasses import replace

    from lstsd_edu.data import TensorData

    cut = lambda t, n: TensorData(t.x[:n], t.y[:n], t.clean_y[:n], t.flipped[:n])  # noqa: E731
    return replace(data, train=cut(data.train, 512), test=cut(data.test, 256))


def make_trainer(data, method, epochs=4, seed=0, **kwargs):
    seed_everything(seed)
    model = build_model("cnn1d", data.input_shape, data.num_classes, width=8)
    return Trainer(
        model, method, data, epochs=epochs, batch_size=64, lr=0.05, seed=seed, progress=False, device="cpu", **kwargs
    )


def lstsd(**overrides):
    args = dict(w_long=0.4, w_short=0.3, lag=2, long_mode="sliding", temperature=2.0) | overrides
    return build_method("lstsd", **args)


def comparable(history):
    return history.drop(columns="seconds")


def test_zero_weight_lstsd_is_exactly_cross_entropy(small_data):
    ce = make_trainer(
        small_data, build_method("ce", w_long=0, w_short=0, lag=1, long_mode="sliding", temperature=1.0), epochs=5
    )
    zero = make_trainer(small_data, lstsd(w_long=0.0, w_short=0.0), epochs=5)
    h_ce, h_zero = ce.fit(), zero.fit()
    assert h_ce.drop(columns="seconds").equals(h_zero.drop(columns="seconds"))
    for a, b in zip(ce.model.parameters(), zero.model.parameters()):
        assert torch.equal(a, b), "bit-for-bit identical weights"


def test_same_seed_same_numbers_and_other_seed_other_numbers(small_data):
    a = comparable(make_trainer(small_data, lstsd(), seed=1).fit())
    b = comparable(make_trainer(small_data, lstsd(), seed=1).fit())
    c = comparable(make_trainer(small_data, lstsd(), seed=2).fit())
    assert a.equals(b)
    assert not a.equals(c)


@pytest.mark.parametrize("mode", ["sliding", "phase"])
def test_resume_gives_the_same_history_as_training_straight(small_data, tmp_path, mode):
    straight = make_trainer(small_data, lstsd(long_mode=mode, lag=3), epochs=10)
    h_straight = straight.fit()

    first = make_trainer(small_data, lstsd(long_mode=mode, lag=3), epochs=10)
    first.fit(until=5)
    first.save_checkpoint(tmp_path / "ckpt.pt")
    torch.manual_seed(12345)  # disturb the global RNG: the checkpoint must restore it
    resumed = make_trainer(small_data, lstsd(long_mode=mode, lag=3), epochs=10, seed=99)
    resumed.load_checkpoint(tmp_path / "ckpt.pt")
    h_resumed = resumed.fit()
    assert len(h_resumed) == 10
    assert comparable(h_straight).equals(comparable(h_resumed))
    assert torch.equal(straight.method.buffer.values, resumed.method.buffer.values)


def test_distillation_changes_training_once_teachers_exist(small_data):
    ce = comparable(make_trainer(small_data, lstsd(w_long=0.0, w_short=0.0)).fit())
    distilled = comparable(make_trainer(small_data, lstsd()).fit())
    # epoch 1 has no teacher (plain CE for everyone), so the first row is identical
    assert ce.iloc[0].equals(distilled.iloc[0])
    assert not ce.iloc[1:].equals(distilled.iloc[1:])


def test_history_columns_and_buffer_size(small_data):
    trainer = make_trainer(small_data, lstsd(lag=2), epochs=2)
    history = trainer.fit()
    assert list(history.columns) == ["epoch", "lr", "train_loss", "train_acc", "test_loss", "test_acc", "seconds"]
    assert history.epoch.tolist() == [1, 2]
    assert history.lr.iloc[0] == pytest.approx(0.05) and history.lr.iloc[1] < 0.05  # cosine
    buffer = 512 * 10 * 3 * 2 + 512 * 3 * 2  # 3 slots of fp16 records + int16 stamps
    table = 512 * (2 * 10 + 2) * 4  # the per-epoch teacher mixture
    assert trainer.method.state_bytes == buffer + table


@pytest.mark.parametrize("mode", ["sliding", "phase"])
def test_per_epoch_teacher_table_equals_reading_teachers_every_step(small_data, mode):
    """The table is an optimisation only: both paths give the same training, number for number."""
    with_table = make_trainer(small_data, lstsd(long_mode=mode, lag=2), epochs=6)
    per_step = lstsd(long_mode=mode, lag=2)
    per_step.MAX_TABLE_BYTES = 0  # forces the per-step path
    without = make_trainer(small_data, per_step, epochs=6)
    assert with_table.method.use_table and not without.method.use_table
    assert comparable(with_table.fit()).equals(comparable(without.fit()))
    # the table path keeps its records until the epoch ends, the per-step path writes them at once
    assert torch.equal(with_table.method.buffer.stamp, without.method.buffer.stamp)
    assert torch.equal(with_table.method.buffer.values, without.method.buffer.values)
    assert with_table.method.taken == []  # nothing left over after an epoch


def test_every_sample_is_recorded_once_per_epoch(small_data):
    trainer = make_trainer(small_data, lstsd(lag=2), epochs=3)
    trainer.fit()
    _, valid = trainer.method.buffer.log_probs([0, 1, 2], torch.arange(512))
    assert valid.all()


def test_diagnostics_frame(small_data):
    trainer = make_trainer(small_data, lstsd(lag=2), epochs=3, diagnostics=True)
    trainer.fit()
    d = trainer.divergences
    assert len(d) == 3 * 512
    assert d[d.epoch == 1].kl_short.isna().all()  # no short-term teacher in the first epoch
    assert d[d.epoch == 3].kl_long.notna().all() and (d[d.epoch == 3].kl_long >= -1e-6).all()
    assert d.flipped.sum() == 3 * int(small_data.train.flipped.sum())


def test_noisy_training_end_to_end_with_presets():
    run = train("lstsd", preset("mnist1d", epochs=2, width=8))
    s = run.summary()
    assert s["method"] == "lstsd" and s["epochs"] == 2 and 0.0 <= s["final_test_acc"] <= 1.0
    assert s["buffer_bytes"] > 0


def test_device_auto_and_unknown():
    assert get_device("auto").type in ("cuda", "mps", "cpu")
    assert get_device("cpu").type == "cpu"
    with pytest.raises(ConfigError, match="device"):
        get_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="device must be one available"):
            get_device("cuda")


@pytest.mark.parametrize(
    "kwargs, parameter",
    [
        (dict(w_long=1.2), "long_weight"),
        (dict(w_short=-0.1), "short_weight"),
        (dict(w_long=0.7, w_short=0.6), "long_weight \\+ short_weight"),
        (dict(lag=0), "lag"),
        (dict(temperature=0.0), "temperature"),
        (dict(long_mode="cyclic"), "long_mode"),
    ],
)
def test_bad_hyperparameters_fail_early(kwargs, parameter):
    args = dict(w_long=0.4, w_short=0.4, lag=5, long_mode="sliding", temperature=1.0) | kwargs
    with pytest.raises(ConfigError, match=parameter):
        SampleDistillation(**args)
