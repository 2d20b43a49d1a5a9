"""lstsd_edu.trainer: zero-weight LSTSD is CE, determinism, resume equivalence, history, diagnostics,
devices, bad input, divergence (NaN and explosion), and checkpoints from another run."""

import math
from dataclasses import replace

import pytest
import torch

from lstsd_edu.config import build_method
from lstsd_edu.data import load_dataset
from lstsd_edu.errors import ConfigError
from lstsd_edu.experiments import preset, train
from lstsd_edu.losses import per_sample_ce
from lstsd_edu.methods import Method
from lstsd_edu.models import build_model
from lstsd_edu.trainer import DivergedWarning, Trainer, get_device, seed_everything


@pytest.fixture(scope="module")
def small_data():
    """A 512-sample slice of noisy MNIST-1D keeps each run to about a second."""
    data = load_dataset("mnist1d", noise=0.3)
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


@pytest.mark.parametrize(
    "kwargs, parameter",
    [
        (dict(model=None), "model must be a Module"),
        (dict(method="lstsd"), "method must be a Method"),
        (dict(data=None), "data must be a Dataset"),
        (dict(eval_batch_size=0), "eval_batch_size"),
        (dict(seed=-1), "seed"),
        (dict(seed="one"), "seed"),
        (dict(model="3 classes"), "model must give 10 class scores per sample"),
        (dict(model="2-d inputs"), "cannot take this data's inputs, shaped \\(1, 40\\)"),
    ],
)
def test_bad_trainer_arguments_fail_early(small_data, kwargs, parameter):
    models = {
        "3 classes": build_model("cnn1d", small_data.input_shape, 3, width=8),
        "2-d inputs": build_model("cnn2d", (1, 8, 8), small_data.num_classes, width=4),
    }
    model = build_model("cnn1d", small_data.input_shape, small_data.num_classes, width=8)
    args = dict(model=model, method=lstsd(), data=small_data, epochs=2, device="cpu", progress=False) | kwargs
    args["model"] = models.get(args["model"], args["model"]) if isinstance(args["model"], str) else args["model"]
    with pytest.raises(ConfigError, match=parameter):
        Trainer(**args)


# ---------------------------------------------------------------------------------------------
# divergence
# ---------------------------------------------------------------------------------------------
class NaNLoss(Method):
    """CE until `epoch`, then NaN: a model or loss gone wrong."""

    name = "nan_from_epoch_1"

    def loss(self, logits, batch, epoch):
        ce = per_sample_ce(logits, batch[1]).mean()
        return ce * math.nan if epoch >= 1 else ce


def test_a_nan_loss_stops_the_run_marks_it_and_keeps_the_epochs_trained(small_data):
    trainer = make_trainer(small_data, NaNLoss(), epochs=5, seed=3)
    with pytest.warns(DivergedWarning, match=r"nan_from_epoch_1 seed 3 diverged in epoch 2: .* not finite"):
        history = trainer.fit()
    assert trainer.diverged_epoch == 2 and trainer.epoch == 2
    assert len(history) == 2 and math.isnan(history.train_loss.iloc[1]) and math.isfinite(history.train_loss.iloc[0])
    assert len(trainer.fit()) == 2  # a diverged run is not trained further


def test_a_learning_rate_far_too_large_is_caught_as_an_explosion(small_data):
    seed_everything(0)
    model = build_model("cnn1d", small_data.input_shape, small_data.num_classes, width=8)
    trainer = Trainer(
        model, build_method("ce"), small_data, epochs=4, batch_size=64, lr=9.9, device="cpu", progress=False
    )
    with pytest.warns(DivergedWarning, match=r"ce seed 0 diverged in epoch 1: its mean training loss .* > 100 × 2.3"):
        history = trainer.fit()
    assert trainer.diverged_epoch == 1 and len(history) == 1 and history.train_loss.iloc[0] > 230


def test_the_explosion_rule_is_100_times_the_larger_of_ln_c_and_the_first_epoch(small_data):
    trainer = make_trainer(small_data, build_method("ce"), epochs=4)
    ln_c = math.log(10)
    trainer.check_divergence(100 * ln_c)  # the first epoch: against ln C alone
    assert trainer.diverged_epoch is None
    trainer.rows = [{"train_loss": 5.0}]  # a first epoch above ln C raises the bar
    trainer.check_divergence(500.0)
    assert trainer.diverged_epoch is None
    with pytest.warns(DivergedWarning):
        trainer.check_divergence(500.1)
    assert trainer.diverged_epoch == 1
    trainer = make_trainer(small_data, build_method("ce"), epochs=4)
    trainer.rows = [{"train_loss": 0.5}]  # a first epoch below ln C does not lower it
    trainer.check_divergence(100 * ln_c)
    assert trainer.diverged_epoch is None


def test_a_diverged_run_summary_has_nan_accuracies_and_the_epoch():
    config = preset("mnist1d", epochs=3, width=4, lr=9.9)
    with pytest.warns(DivergedWarning, match="lstsd seed 0"):
        run = train("lstsd", config)
    summary = run.summary()
    assert summary["diverged"] is True and summary["diverged_epoch"] == len(run.history) < 3
    assert all(math.isnan(summary[k]) for k in ("final_test_acc", "selected_test_acc", "selected_epoch"))
    assert run.history.test_acc.notna().all()  # the history keeps what was measured


# ---------------------------------------------------------------------------------------------
# checkpoints from another run
# ---------------------------------------------------------------------------------------------
def test_a_checkpoint_from_another_run_is_refused_naming_each_difference(small_data, tmp_path):
    path = tmp_path / "ckpt.pt"
    saved = make_trainer(small_data, lstsd(lag=2), epochs=3)
    saved.fit(until=1, checkpoint=path)
    make_trainer(small_data, lstsd(lag=2), epochs=3, seed=7).load_checkpoint(path)  # the seed is the checkpoint's

    cases = [
        (make_trainer(small_data, lstsd(lag=3), epochs=3), r"method is LSTSD\(.*lag=2.*\) there, LSTSD\(.*lag=3"),
        (make_trainer(small_data, build_method("ce"), epochs=3), r"method is LSTSD\(.*\) there, CrossEntropy\(\) here"),
        (make_trainer(small_data, lstsd(lag=2), epochs=4), "epochs is 3 there, 4 here"),
    ]
    for width, lr, difference in [
        (16, 0.05, "model is CNN1d with .* parameters there, CNN1d with .* parameters here"),
        (8, 0.1, "lr is 0.05 there, 0.1 here"),
    ]:
        model = build_model("cnn1d", small_data.input_shape, 10, width=width)
        trainer = Trainer(model, lstsd(lag=2), small_data, epochs=3, batch_size=64, lr=lr, device="cpu", progress=False)
        cases.append((trainer, difference))
    fewer = replace(small_data, train=small_data.train.subset(torch.arange(500)))
    cases.append((make_trainer(fewer, lstsd(lag=2), epochs=3), "data is 512 training samples.* there, 500 training"))
    for trainer, difference in cases:
        with pytest.raises(ConfigError, match=f"ckpt.pt: the checkpoint is from another run: .*{difference}"):
            trainer.load_checkpoint(path)


def test_a_damaged_checkpoint_is_a_config_error(small_data, tmp_path):
    path = tmp_path / "ckpt.pt"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="cannot be read"):
        make_trainer(small_data, lstsd(), epochs=2).load_checkpoint(path)


def test_the_diverged_mark_travels_with_the_checkpoint(small_data, tmp_path):
    trainer = make_trainer(small_data, NaNLoss(), epochs=4)
    with pytest.warns(DivergedWarning):
        trainer.fit(checkpoint=tmp_path / "ckpt.pt")
    resumed = make_trainer(small_data, NaNLoss(), epochs=4)
    resumed.load_checkpoint(tmp_path / "ckpt.pt")
    assert resumed.diverged_epoch == 2 and len(resumed.fit()) == 2
