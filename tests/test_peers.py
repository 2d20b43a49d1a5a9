"""The peers (snapshot, born_again, pskd, te): each loss against a hand computation, the snapshot
teacher's bookkeeping, Born-Again's fresh second generation, resume, and `--methods all`."""

import math

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from lstsd_edu import experiments
from lstsd_edu.cli import main
from lstsd_edu.data import Dataset, TensorData
from lstsd_edu.errors import ConfigError
from lstsd_edu.experiments import preset
from lstsd_edu.methods import (
    METHODS,
    PEERS,
    BornAgain,
    ProgressiveSelfKD,
    SnapshotDistillation,
    TemporalEnsembling,
    build_method,
)
from lstsd_edu.models import build_model
from lstsd_edu.trainer import Trainer, seed_everything

# a hand-made batch: 2 samples, 3 classes
Z = torch.tensor([[2.0, -1.0, 0.5], [0.0, 1.0, 3.0]])  # student logits
Y = torch.tensor([0, 2])
ZT = torch.tensor([[1.0, 0.0, -1.0], [0.5, 0.5, 2.0]])  # teacher logits
INDEX = torch.tensor([0, 1])
X = torch.zeros(2, 4)  # inputs; the fixed teacher below ignores them


def softmax(z):
    """exp(z_c) / Σ_k exp(z_k), row by row, written out."""
    e = torch.exp(z - z.max(dim=1, keepdim=True).values)
    return e / e.sum(dim=1, keepdim=True)


def ce(z, y):
    """−log softmax(z)_y per sample."""
    return -torch.log(softmax(z)[torch.arange(len(y)), y])


def kl(p, q):
    """Σ_c p_c (log p_c − log q_c) per sample."""
    return (p * (torch.log(p) - torch.log(q))).sum(dim=1)


class FixedTeacher(nn.Module):
    """A 'model' whose logits are the constant ZT, whatever the input; records grad mode."""

    def __init__(self, logits):
        super().__init__()
        self.register_buffer("logits", logits)
        self.grad_enabled = []

    def forward(self, x):
        self.grad_enabled.append(torch.is_grad_enabled())
        return self.logits[: x.shape[0]]


# -- losses against a hand computation ------------------------------------------------------------
def test_snapshot_loss_is_ce_without_teacher_then_weighted_ce_plus_kl_of_the_smoothed_teacher():
    method = SnapshotDistillation(temperature=3.0)
    batch = (X, Y, INDEX)
    assert_close(method.loss(Z, batch, 0), ce(Z, Y).mean())  # first cycle: no snapshot yet
    method.teacher = FixedTeacher(ZT)
    p_t = softmax(ZT / 3.0)
    expected = (1 + 1 / 3) * ce(Z, Y).mean() + 1.0 * kl(p_t, softmax(Z)).mean()
    assert_close(method.loss(Z, batch, 5), expected)
    assert method.teacher.grad_enabled == [False]  # the teacher ran under no_grad


def test_born_again_loss_by_hand():
    method = BornAgain(weight=0.3, temperature=2.0)
    method.teacher = FixedTeacher(ZT)
    p_t = softmax(ZT / 2.0)
    # (1 − w) CE + w τ² KL(p_t ‖ softmax(z / τ)), batch mean
    expected = 0.7 * ce(Z, Y).mean() + 0.3 * 4.0 * kl(p_t, softmax(Z / 2.0)).mean()
    assert_close(method.loss(Z, (X, Y, INDEX), 0), expected)


def test_pskd_target_mixes_label_and_previous_epoch_prediction():
    method = ProgressiveSelfKD(alpha=0.8, epochs=4)
    method.setup(num_samples=2, num_classes=3, device=torch.device("cpu"))
    z0, z1 = Z, Z.flip(1) + 0.25
    onehot = torch.eye(3)[Y]
    # epoch 0: no previous prediction, the target is the label: plain CE
    assert_close(method.loss(z0, (X, Y, INDEX), 0), ce(z0, Y).mean())
    # epoch 1: α_t = 0.8 · 2 / 4 = 0.4; target = 0.6 · onehot + 0.4 · softmax(z0)
    target = 0.6 * onehot + 0.4 * softmax(z0)
    expected = -(target * torch.log(softmax(z1))).sum(dim=1).mean()
    assert_close(method.loss(z1, (X, Y, INDEX), 1), expected, atol=2e-3, rtol=0)  # fp16 records
    assert method.alpha_at(3) == pytest.approx(0.8)  # the last epoch reaches α_T


def test_temporal_ensembling_bias_corrected_ema_target_and_rampup():
    method = TemporalEnsembling(decay=0.6, max_weight=30.0, rampup=0.5, epochs=4)  # R = 2 epochs
    method.setup(num_samples=2, num_classes=3, device=torch.device("cpu"))
    assert method.weight(0) == pytest.approx(30 * math.exp(-5))
    assert method.weight(1) == pytest.approx(30 * math.exp(-5 * 0.25))
    assert method.weight(2) == method.weight(3) == 30
    z0, z1, z2 = Z, Z.flip(1), Z * 0.5
    p0, p1, p2 = softmax(z0), softmax(z1), softmax(z2)
    batch = (X, Y, INDEX)
    # epoch 0: nothing averaged yet, CE only
    assert_close(method.loss(z0, batch, 0), ce(z0, Y).mean())
    # epoch 1: Z = 0.4 p0, target = Z / (1 − 0.6) = p0
    mse = ((p1 - p0) ** 2).mean(dim=1)
    assert_close(method.loss(z1, batch, 1), ce(z1, Y).mean() + 30 * math.exp(-1.25) * mse.mean())
    # epoch 2: Z = 0.6 · 0.4 p0 + 0.4 p1, target = Z / (1 − 0.6²)
    target = (0.24 * p0 + 0.4 * p1) / 0.64
    mse = ((p2 - target) ** 2).mean(dim=1)
    assert_close(method.loss(z2, batch, 2), ce(z2, Y).mean() + 30 * mse.mean())
    assert method.updates.tolist() == [3, 3]


# -- the snapshot teacher: frozen, and replaced exactly at cycle ends ------------------------------
def toy_data(n=96, classes=3, length=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, length, generator=g)
    y = (x[:, 0, :3].sum(1) > 0).long() + (x[:, 0, 3] > 1).long()  # 3 learnable classes
    split = lambda a, b: TensorData(x[a:b], y[a:b], y[a:b].clone(), torch.zeros(b - a, dtype=torch.bool))  # noqa: E731
    return Dataset("toy", split(0, 64), split(64, n), classes, (1, length))


def toy_trainer(method, epochs, seed=0, data=None):
    data = toy_data() if data is None else data
    seed_everything(seed)
    model = build_model("mlp", data.input_shape, data.num_classes, width=16)
    return Trainer(model, method, data, epochs=epochs, batch_size=16, lr=0.1, seed=seed, progress=False, device="cpu")


def state_of(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def same(a, b):
    return all(torch.equal(a[k], b[k]) for k in a)


class RecordingSnapshot(SnapshotDistillation):
    """Records, after every epoch, the model's and the teacher's weights."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.after = []  # (model state, teacher state or None), one per epoch

    def end_epoch(self, epoch, model):
        super().end_epoch(epoch, model)
        self.after.append((state_of(model), None if self.teacher is None else state_of(self.teacher)))


def test_snapshot_teacher_is_frozen_within_a_cycle_and_replaced_exactly_at_cycle_ends():
    method = RecordingSnapshot(cycles=3)  # 6 epochs: cycles are epochs {0, 1}, {2, 3}, {4, 5}
    trainer = toy_trainer(method, epochs=6)
    teacher_sums = []  # one entry per teacher forward pass
    history = None

    def watch(module, inputs, output):
        assert not torch.is_grad_enabled()
        teacher_sums.append(sum(p.sum().item() for p in module.parameters()))

    trainer.fit(until=2)  # end of cycle 1: the snapshot now exists
    assert method.bounds == [0, 2, 4, 6]
    method.teacher.register_forward_hook(watch)
    history = trainer.fit()

    models, teachers = zip(*method.after)
    assert teachers[0] is None  # no teacher during the first cycle
    assert same(teachers[1], models[1])  # snapshot = the model at the end of epoch 1
    assert same(teachers[2], teachers[1]) and not same(models[2], models[1])  # frozen in cycle 2
    assert same(teachers[3], models[3]) and not same(teachers[3], teachers[2])  # new at the end
    assert same(teachers[4], teachers[3]) and same(teachers[5], teachers[3])  # no snapshot after the last
    steps_per_epoch = 64 // 16
    assert len(teacher_sums) == 4 * steps_per_epoch  # one extra forward per step of cycles 2 and 3
    assert len(set(teacher_sums[:8])) == 1 and len(set(teacher_sums[8:])) == 1  # constant per cycle
    assert not method.teacher.training
    assert all(not p.requires_grad for p in method.teacher.parameters())
    # the learning rate restarts at lr₀ at each cycle's first epoch, and is halfway down mid-cycle
    assert history.lr.tolist() == pytest.approx([0.1, 0.05, 0.1, 0.05, 0.1, 0.05])


def test_snapshot_teacher_runs_in_the_callers_autocast_without_grad():
    method = SnapshotDistillation()
    method.teacher = nn.Linear(4, 3).eval().requires_grad_(False)
    seen = []
    method.teacher.register_forward_hook(lambda m, i, o: seen.append((o.dtype, torch.is_grad_enabled())))
    logits = torch.randn(2, 3, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = method.loss(logits, (torch.randn(2, 4), Y, INDEX), 0)
    loss.backward()
    assert seen == [(torch.bfloat16, False)]
    assert logits.grad is not None


# -- Born-Again: two generations, the second from a fresh initialisation ---------------------------
def test_born_again_second_generation_starts_from_a_fresh_initialisation(monkeypatch):
    created = []

    class RecordingTrainer(Trainer):
        def __init__(self, model, method, *args, **kwargs):
            created.append((method.name, state_of(model), kwargs["seed"]))
            super().__init__(model, method, *args, **kwargs)
            self.own_seconds = []

        def train_epoch(self):
            row = super().train_epoch()
            self.own_seconds.append(row["seconds"])
            return row

    monkeypatch.setattr(experiments, "Trainer", RecordingTrainer)
    config = preset("digits", epochs=2, width=4, device="cpu")
    run = experiments.train("born_again", config, seed=3)
    (name1, init1, seed1), (name2, init2, seed2) = created
    assert (name1, seed1) == ("ce", 3)
    assert (name2, seed2) == ("born_again", BornAgain.second_generation_seed(3))
    method = run.trainer.method
    first = method.first_generation
    final1 = state_of(first.trainer.model)
    # generation 2's starting point: a fresh build with its own seed, not generation 1's weights
    seed_everything(seed2)
    data = first.trainer.data
    fresh = state_of(build_model("cnn2d", data.input_shape, data.num_classes, width=4))
    assert same(init2, fresh)
    assert not same(init2, final1) and not same(init2, init1)
    # the teacher is generation 1's final model, frozen
    assert same(state_of(method.teacher), final1)
    assert all(not p.requires_grad for p in method.teacher.parameters()) and not method.teacher.training
    # both generations' time is charged to each epoch of the budget
    assert run.history.seconds.tolist() == pytest.approx(
        [a + b for a, b in zip(first.trainer.own_seconds, run.trainer.own_seconds)]
    )
    assert run.summary()["epochs"] == 2 and len(run.history) == 2


def test_born_again_without_a_teacher_fails_early():
    with pytest.raises(ConfigError, match="born_again needs its generation-1 teacher"):
        toy_trainer(BornAgain(), epochs=1)


# -- every peer trains, resumes exactly, and is reachable by name --------------------------------------
def make_peer(name, data):
    method = build_method(name, w_long=0.4, w_short=0.4, lag=2, long_mode="sliding", temperature=1.0)
    if name == "born_again":
        teacher = toy_trainer(
            build_method("ce", w_long=0, w_short=0, lag=1, long_mode="sliding", temperature=1.0), epochs=2, data=data
        )
        teacher.fit()
        method.set_teacher(teacher.model)
    return method


@pytest.mark.parametrize("name", list(PEERS))
def test_peer_resume_gives_the_same_history_as_training_straight(name, tmp_path):
    data = toy_data()
    straight = toy_trainer(make_peer(name, data), epochs=6, data=data)
    h_straight = straight.fit()
    first = toy_trainer(make_peer(name, data), epochs=6, data=data)
    first.fit(until=3)
    first.save_checkpoint(tmp_path / "ckpt.pt")
    torch.manual_seed(12345)
    resumed = toy_trainer(make_peer(name, data), epochs=6, seed=7, data=data)
    resumed.load_checkpoint(tmp_path / "ckpt.pt")
    h_resumed = resumed.fit()
    assert h_straight.drop(columns="seconds").equals(h_resumed.drop(columns="seconds"))
    assert resumed.method.state_bytes == straight.method.state_bytes > 0


def test_methods_list_and_build_method_know_every_peer():
    assert set(PEERS) <= set(METHODS)
    kinds = {
        name: type(build_method(name, w_long=0.4, w_short=0.4, lag=2, long_mode="sliding", temperature=1.0))
        for name in PEERS
    }
    assert kinds == {
        "snapshot": SnapshotDistillation,
        "born_again": BornAgain,
        "pskd": ProgressiveSelfKD,
        "te": TemporalEnsembling,
    }
    assert {name: cls.extra_forward_passes for name, cls in PEERS.items()} == {
        "snapshot": 1,
        "born_again": 1,
        "pskd": 0,
        "te": 0,
    }


@pytest.mark.parametrize(
    "kwargs, parameter",
    [
        (dict(cls=SnapshotDistillation, cycles=0), "cycles"),
        (dict(cls=SnapshotDistillation, temperature=0.0), "temperature"),
        (dict(cls=BornAgain, weight=1.5), "born_again_weight"),
        (dict(cls=ProgressiveSelfKD, alpha=-0.1), "pskd_alpha"),
        (dict(cls=TemporalEnsembling, decay=1.0), "te_decay"),
    ],
)
def test_bad_peer_settings_fail_early(kwargs, parameter):
    cls = kwargs.pop("cls")
    with pytest.raises(ConfigError, match=parameter):
        cls(**kwargs)


def test_cli_compare_methods_all_runs_every_method(tmp_path, capsys):
    code = main(
        [
            "compare",
            "--dataset",
            "digits",
            "--methods",
            "all",
            "--seeds",
            "0",
            "--epochs",
            "1",
            "--device",
            "cpu",
            "--out",
            str(tmp_path),
            "--no-progress",
        ]
    )
    assert code == 0
    import pandas as pd

    summary = pd.read_csv(tmp_path / "summary.csv")
    assert summary.method.tolist() == list(METHODS)
    out = capsys.readouterr().out
    assert all(name in out for name in METHODS)


def test_accuracy_cost_figure_one_panel_per_setting():
    import matplotlib

    matplotlib.use("Agg")
    import pandas as pd

    from lstsd_edu.plots import accuracy_cost_figure

    t = pd.DataFrame(
        {
            "method": ["ce", "lstsd", "snapshot"] * 2,
            "setting": ["a"] * 3 + ["b"] * 3,
            "final_acc_mean": [0.7, 0.75, 0.8, 0.9, 0.91, 0.9],
            "final_acc_std": [0.01] * 6,
            "cost_vs_ce": [1.0, 1.02, 1.4, 1.0, 1.01, 1.5],
        }
    ).set_index("method")
    fig = accuracy_cost_figure(t)
    assert [ax.get_title() for ax in fig.axes] == ["a", "b"]
    assert [text.get_text() for text in fig.axes[0].texts] == ["ce", "lstsd", "snapshot"]
    single = accuracy_cost_figure(t[t.setting == "a"].drop(columns="setting"), title="one")
    assert len(single.axes) == 1 and single.axes[0].get_title() == "one"
