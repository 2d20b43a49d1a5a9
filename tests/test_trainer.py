"""lstsd_edu.trainer: zero-weight LSTSD is CE, determinism, resume equivalence, history, diagnostics,
devices, and bad input."""

import pytest
import torch

from lstsd_edu.data import load_dataset
from lstsd_edu.errors import ConfigError
from lstsd_edu.experiments import preset, train
from lstsd_edu.methods import build_method
from lstsd_edu.models import build_model
from lstsd_edu.trainer import Trainer, get_device, seed_everything


@pytest.fixture(scope="module")
def small_data():
    """A 512-sample slice of noisy MNIST-1D keeps each run to about a second."""
    data = load_dataset("mnist1d", noise=0.3)
    from dataclasses import replace

    from lstsd_edu.data import TensorData

    def cut(t, n):
        return TensorData(t.x[:n], t.y[:n], t.clean_y[:n], t.flipped[:n])

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
    ce = make_trainer(small_data, build_method("ce"), epochs=5)
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
    assert list(history.columns) == [
        "epoch",
        "lr",
        "train_loss",
        "train_acc",
        "val_loss",
        "val_acc",
        "test_loss",
        "test_acc",
        "seconds",
    ]
    assert history.val_acc.isna().all()  # this data has no validation split
    assert history.epoch.tolist() == [1, 2]
    assert history.lr.iloc[0] == pytest.approx(0.05) and history.lr.iloc[1] < 0.05  # cosine
    buffer = 512 * 10 * 3 * 2 + 512 * 3 * 2  # 3 slots of fp16 records + int16 stamps
    table = 512 * (2 * 10 + 2) * 4  # the per-epoch teacher mixture
    assert trainer.method.state_bytes == buffer + table


def test_diagnostics_frame(small_data):
    trainer = make_trainer(small_data, lstsd(lag=2), epochs=3, diagnostics=True)
    trainer.fit()
    d = trainer.divergences
    assert len(d) == 3 * 512
    assert d[d.epoch == 1].kl_short.isna().all()  # no short-term teacher in the first epoch
    assert d[d.epoch == 3].kl_long.notna().all() and (d[d.epoch == 3].kl_long >= -1e-6).all()
    assert d.flipped.sum() == 3 * int(small_data.train.flipped.sum())


def test_memorisation_columns_only_with_diagnostics(small_data):
    from lstsd_edu.diagnostics import MEMORISATION, memorisation

    plain = make_trainer(small_data, build_method("ce"), epochs=3).fit()
    assert not set(MEMORISATION) & set(plain.columns)
    watched = make_trainer(small_data, build_method("ce"), epochs=3, diagnostics=True)
    history = watched.fit()
    assert list(history.columns) == [*plain.columns, *MEMORISATION]  # for CE too: no buffer needed
    assert comparable(history[plain.columns]).equals(comparable(plain))  # watching does not change training
    assert history[list(MEMORISATION)].apply(lambda c: c.between(0, 1)).all().all()
    last = history.iloc[-1][list(MEMORISATION)].to_dict()
    assert last == pytest.approx(memorisation(watched.model, watched.data.train))  # the trained model's
    assert watched.divergences.empty  # the per-sample divergences stay LSTSD's (its buffer's)


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
        (dict(epochs=0), "epochs"),
        (dict(batch_size=0), "batch_size"),
        (dict(lr=0.0), "lr"),
        (dict(momentum=1.0), "momentum"),
        (dict(weight_decay=-1.0), "weight_decay"),
    ],
)
def test_bad_trainer_settings_fail_early(small_data, kwargs, parameter):
    model = build_model("cnn1d", small_data.input_shape, small_data.num_classes, width=8)
    args = dict(epochs=2, batch_size=64, lr=0.05, device="cpu", progress=False) | kwargs
    with pytest.raises(ConfigError, match=parameter):
        Trainer(model, lstsd(), small_data, **args)
