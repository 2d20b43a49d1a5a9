"""lstsd_edu.methods: the registry and interface; each peer's loss against a hand computation, the
snapshot teacher's bookkeeping, Born-Again's fresh second generation, resume for every method,
LSTSD's two ways of computing its loss, `--methods all`, and the noisy-label baselines GCE and ELR
(their losses, GCE's limits, ELR's per-sample targets) against hand computations."""

import math

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from lstsd_edu import experiments
from lstsd_edu.cli import main
from lstsd_edu.config import build_method
from lstsd_edu.data import Dataset, TensorData
from lstsd_edu.errors import ConfigError
from lstsd_edu.experiments import preset
from lstsd_edu.methods import (
    METHODS,
    BornAgain,
    EarlyLearningRegularization,
    GeneralizedCrossEntropy,
    ProgressiveSelfKD,
    SnapshotDistillation,
    TemporalEnsembling,
)
from lstsd_edu.models import build_model
from lstsd_edu.trainer import Trainer, seed_everything

PEERS = ("snapshot", "born_again", "pskd", "te", "gce", "elr")
CPU = torch.device("cpu")

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
    method = ProgressiveSelfKD(alpha=0.8)
    method.setup(num_samples=2, num_classes=3, device=CPU, epochs=4)
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
    method = TemporalEnsembling(decay=0.6, max_weight=30.0, rampup=0.5)
    method.setup(num_samples=2, num_classes=3, device=CPU, epochs=4)  # R = 2 epochs
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

    def split(a, b):
        return TensorData(x[a:b], y[a:b], y[a:b].clone(), torch.zeros(b - a, dtype=torch.bool))

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

    monkeypatch.setattr(experiments, "Trainer", RecordingTrainer)
    config = preset("digits", epochs=2, width=4, device="cpu")
    run = experiments.train("born_again", config, seed=3)
    (name1, init1, seed1), (name2, init2, seed2) = created
    assert (name1, seed1) == ("ce", 3)
    assert (name2, seed2) == ("born_again", BornAgain().model_seed(3))
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
    first_seconds = first.history.seconds
    assert [method.prior_seconds(e) for e in range(2)] == first_seconds.tolist()
    assert ((run.history.seconds - first_seconds) > 0).all() and (first_seconds > 0).all()
    assert run.summary()["epochs"] == 2 and len(run.history) == 2


def test_born_again_without_a_teacher_fails_early():
    with pytest.raises(ConfigError, match="born_again needs its generation-1 teacher"):
        toy_trainer(BornAgain(), epochs=1)


# -- every peer trains, resumes exactly, and is reachable by name --------------------------------------
def make_method(name, data):
    """Any method by name; one that trains a run first (`prepare`) gets a short toy run."""
    method = build_method(name, w_long=0.4, w_short=0.4, lag=2, long_mode="sliding", temperature=1.0)

    def pretrain(other, seed):
        trainer = toy_trainer(build_method(other), epochs=2, seed=seed, data=data)
        trainer.fit()
        return experiments.Run(other, seed, experiments.Config(), trainer)

    method.prepare(pretrain, 0)
    return method


@pytest.mark.parametrize("name", list(METHODS))
def test_resume_gives_the_same_history_as_training_straight(name, tmp_path):
    data = toy_data()
    straight = toy_trainer(make_method(name, data), epochs=6, data=data)
    h_straight = straight.fit()
    first = toy_trainer(make_method(name, data), epochs=6, data=data)
    first.fit(until=3)
    first.save_checkpoint(tmp_path / "ckpt.pt")
    torch.manual_seed(12345)
    resumed = toy_trainer(make_method(name, data), epochs=6, seed=7, data=data)
    resumed.load_checkpoint(tmp_path / "ckpt.pt")
    h_resumed = resumed.fit()
    assert h_straight.drop(columns="seconds").equals(h_resumed.drop(columns="seconds"))
    assert resumed.method.state_bytes == straight.method.state_bytes


# -- one registry, one interface ------------------------------------------------------------------
def test_one_registry_built_from_the_classes_names():
    assert list(METHODS) == ["ce", "ls", "short", "long", "lstsd", "snapshot", "born_again", "pskd", "te", "gce", "elr"]
    assert all(cls.name == name for name, cls in METHODS.items())
    kinds = {name: type(build_method(name)) for name in PEERS}
    assert kinds == {
        "snapshot": SnapshotDistillation,
        "born_again": BornAgain,
        "pskd": ProgressiveSelfKD,
        "te": TemporalEnsembling,
        "gce": GeneralizedCrossEntropy,
        "elr": EarlyLearningRegularization,
    }
    assert {name: METHODS[name].extra_forward_passes for name in PEERS} == {
        "snapshot": 1,
        "born_again": 1,
        "pskd": 0,
        "te": 0,
        "gce": 0,
        "elr": 0,
    }
    assert [name for name, cls in METHODS.items() if not cls.supports_ddp] == ["te", "elr"]


def test_every_method_reads_its_own_settings_from_a_config():
    config = experiments.Config(
        label_smoothing=0.2,
        snapshot_cycles=3,
        snapshot_temperature=2.0,
        born_again_weight=0.3,
        born_again_temperature=2.0,
        pskd_alpha=0.5,
        te_decay=0.7,
        te_max_weight=10.0,
        te_rampup=0.1,
        gce_q=0.5,
        elr_lambda=7.0,
        elr_beta=0.9,
        w_long=0.2,
        w_short=0.6,
        lag=7,
        ramp=3,
        temperature=1.5,
    )
    built = {name: build_method(name, config) for name in METHODS}
    assert built["ls"].smoothing == 0.2
    assert (built["snapshot"].cycles, built["snapshot"].temperature) == (3, 2.0)
    assert built["snapshot"].student_weight == pytest.approx(1.5)  # 1 + 1/T
    assert (built["born_again"].weight, built["born_again"].temperature) == (0.3, 2.0)
    assert built["pskd"].alpha == 0.5
    assert (built["te"].decay, built["te"].max_weight, built["te"].rampup) == (0.7, 10.0, 0.1)
    assert built["gce"].q == 0.5
    assert (built["elr"].weight, built["elr"].beta) == (7.0, 0.9)
    lstsd, short, long = built["lstsd"], built["short"], built["long"]
    assert (lstsd.w_long, lstsd.w_short, lstsd.lag, lstsd.ramp, lstsd.temperature) == (0.2, 0.6, 7, 3, 1.5)
    assert (short.w_long, short.w_short, short.lag) == (0.0, 0.6, 1)
    assert (long.w_long, long.w_short, long.lag) == (0.2, 0.0, 7)


@pytest.mark.parametrize(
    "overrides, parameter",
    [
        (dict(snapshot_cycles=0), "snapshot_cycles"),
        (dict(snapshot_temperature=0.0), "snapshot_temperature"),
        (dict(born_again_weight=1.5), "born_again_weight"),
        (dict(pskd_alpha=-0.1), "pskd_alpha"),
        (dict(te_decay=1.0), "te_decay"),
        (dict(label_smoothing=1.0), "label_smoothing"),
        (dict(gce_q=0.0), "gce_q"),
        (dict(gce_q=1.5), "gce_q"),
        (dict(elr_lambda=-1.0), "elr_lambda"),
        (dict(elr_beta=1.0), "elr_beta"),
    ],
)
def test_bad_method_settings_fail_early(overrides, parameter):
    with pytest.raises(ConfigError, match=parameter):
        build_method("ce", **overrides)  # every setting is checked, whichever method is built
    with pytest.raises(ConfigError, match="method must be one of"):
        build_method("magic")


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


# -- LSTSD: two ways of computing one loss, the same training ------------------------------------------
def lstsd(**overrides):
    return build_method("lstsd", **(dict(w_long=0.4, w_short=0.3, lag=2, temperature=2.0, ramp=2) | overrides))


def comparable(history):
    return history.drop(columns="seconds")


@pytest.mark.parametrize("mode", ["sliding", "phase"])
def test_per_epoch_teacher_table_equals_reading_teachers_every_step(mode):
    """The table is an optimisation only: both paths give the same training, number for number."""
    with_table = toy_trainer(lstsd(long_mode=mode), epochs=6)
    per_step = lstsd(long_mode=mode)
    per_step.MAX_TABLE_BYTES = 0  # forces the per-step path
    without = toy_trainer(per_step, epochs=6)
    assert with_table.method.use_table and not without.method.use_table
    assert comparable(with_table.fit()).equals(comparable(without.fit()))
    # the table path keeps its records until the epoch ends, the per-step path writes them at once
    assert torch.equal(with_table.method.buffer.stamp, without.method.buffer.stamp)
    assert torch.equal(with_table.method.buffer.values, without.method.buffer.values)
    assert with_table.method.taken == []  # nothing left over after an epoch


@pytest.mark.parametrize("mode", ["sliding", "phase"])
def test_readable_loss_trains_as_the_fused_one(mode):
    """`fused=False` computes losses.lstsd_loss term by term every step: the same training up to
    float rounding (the fused path sums the terms in another order)."""
    fused = toy_trainer(lstsd(long_mode=mode), epochs=6)
    readable_method = lstsd(long_mode=mode)
    readable_method.fused = False
    readable = toy_trainer(readable_method, epochs=6)
    assert fused.method.fused and not readable.method.use_table
    h_fused, h_readable = comparable(fused.fit()), comparable(readable.fit())
    for column in ("train_loss", "test_loss"):
        assert_close(
            torch.tensor(h_readable[column].values), torch.tensor(h_fused[column].values), rtol=1e-4, atol=1e-5
        )
    for a, b in zip(fused.model.parameters(), readable.model.parameters(), strict=True):
        assert_close(a, b, rtol=1e-3, atol=1e-4)


def test_fused_switched_off_after_setup_trains_on_the_readable_path():
    """`method.fused = False` on a built trainer's method (as `experiments.make_trainer` builds it)
    takes effect at once: no table, records written by each step, and the training of a method
    built without the fused path, bit for bit."""
    built_readable = lstsd()
    built_readable.fused = False  # before setup
    reference = toy_trainer(built_readable, epochs=5)
    switched = toy_trainer(lstsd(), epochs=5)
    assert switched.method.use_table
    switched.method.fused = False  # after setup
    assert not switched.method.use_table
    assert comparable(switched.fit()).equals(comparable(reference.fit()))
    assert switched.method.table is None and switched.method.state_bytes == switched.method.buffer.nbytes
    assert torch.equal(switched.method.buffer.values, reference.method.buffer.values)
    assert torch.equal(switched.method.buffer.stamp, reference.method.buffer.stamp)


def test_every_sample_is_recorded_once_per_epoch():
    trainer = toy_trainer(lstsd(), epochs=3)
    trainer.fit()
    _, valid = trainer.method.buffer.log_probs([0, 1, 2], torch.arange(64))
    assert valid.all()


def test_the_ramp_grows_both_weights_linearly():
    method = lstsd(w_long=0.4, w_short=0.2, ramp=4)
    assert [w for e in range(5) for w in method.weights(e)] == pytest.approx(
        [0.1, 0.05, 0.2, 0.1, 0.3, 0.15, 0.4, 0.2, 0.4, 0.2]
    )
    assert not method.teaching(0) and method.teaching(1)  # epoch 0 has no records to learn from
    assert lstsd(ramp=0).weights(0) == pytest.approx((0.4, 0.3))


# -- the noisy-label baselines: GCE and ELR against hand computations -------------------------------
def test_gce_loss_by_hand_and_its_gradient_is_ces_weighted_by_p_y_to_the_q():
    p_y = softmax(Z)[torch.arange(2), Y]  # [B]
    # L_q = (1 − p_y^q) / q, batch mean
    assert_close(GeneralizedCrossEntropy(q=0.7).loss(Z, (X, Y, INDEX), 0), ((1 - p_y**0.7) / 0.7).mean())
    z = Z.clone().requires_grad_(True)
    GeneralizedCrossEntropy(q=0.7).loss(z, (X, Y, INDEX), 0).backward()
    # ∂L_q/∂z_i = p_y,i^q · ∂CE_i/∂z_i = p_y,i^q · (softmax(z_i) − onehot(y_i)), over B
    expected = p_y[:, None] ** 0.7 * (softmax(Z) - torch.eye(3)[Y]) / 2
    assert_close(z.grad, expected)


def test_gce_is_one_minus_p_y_at_q_one_and_tends_to_ce_as_q_tends_to_zero():
    batch = (X, Y, INDEX)
    p_y = softmax(Z)[torch.arange(2), Y]
    assert_close(GeneralizedCrossEntropy(q=1.0).loss(Z, batch, 0), (1 - p_y).mean())  # MAE / 2
    # (1 − e^{q log p}) / q = −log p − q (log p)² / 2 + O(q²): the gap to CE shrinks like q
    gaps = [ce(Z, Y).mean() - GeneralizedCrossEntropy(q=q).loss(Z, batch, 0) for q in (1e-1, 1e-2, 1e-3)]
    for q, gap in zip((1e-1, 1e-2, 1e-3), gaps, strict=True):
        assert_close(gap / q, (torch.log(p_y) ** 2 / 2).mean(), rtol=0.1, atol=0)
    assert_close(GeneralizedCrossEntropy(q=1e-7).loss(Z, batch, 0), ce(Z, Y).mean())


def clamped(z, eps=1e-4):
    """softmax(z) clamped to [ε, 1 − ε]."""
    return softmax(z).clamp(eps, 1 - eps)


def renormalised(z):
    """The clamped softmax divided by its sum: ELR's p̂."""
    p = clamped(z)
    return p / p.sum(dim=1, keepdim=True)


def elr_by_hand(z, y, t, lam):
    """CE(z, y) + λ · 1/B Σ_i log(1 − ⟨p_i, t_i⟩), p the clamped softmax, t constant."""
    return ce(z, y).mean() + lam * torch.log(1 - (clamped(z) * t).sum(dim=1)).mean()


def test_elr_targets_are_per_sample_moving_averages_over_several_epochs():
    method = EarlyLearningRegularization(weight=3.0, beta=0.7)
    method.setup(num_samples=3, num_classes=3, device=CPU, epochs=3)
    labels = torch.tensor([0, 2, 1])
    # three epochs of batches of two samples, in different orders: each sample is seen twice
    z0, z1, z2 = Z, Z.flip(1), 0.5 * Z
    i0, i1, i2 = torch.tensor([0, 1]), torch.tensor([1, 2]), torch.tensor([2, 0])
    # epoch 0: first visits of samples 0 and 1, t = 0 · 0.7 + 0.3 p̂
    t0 = 0.3 * renormalised(z0)
    assert_close(method.loss(z0, (X, labels[i0], i0), 0), elr_by_hand(z0, labels[i0], t0, 3.0))
    # epoch 1: sample 1's second visit, sample 2's first
    t1 = torch.stack([0.7 * 0.3 * renormalised(z0)[1], torch.zeros(3)]) + 0.3 * renormalised(z1)
    assert_close(method.loss(z1, (X, labels[i1], i1), 1), elr_by_hand(z1, labels[i1], t1, 3.0))
    # epoch 2: sample 2's second visit, sample 0's second; the gradient treats t as a constant
    t2 = 0.7 * torch.stack([0.3 * renormalised(z1)[1], 0.3 * renormalised(z0)[0]]) + 0.3 * renormalised(z2)
    z = z2.clone().requires_grad_(True)
    loss = method.loss(z, (X, labels[i2], i2), 2)
    assert_close(loss, elr_by_hand(z2, labels[i2], t2, 3.0))
    z_hand = z2.clone().requires_grad_(True)
    elr_by_hand(z_hand, labels[i2], t2, 3.0).backward()
    loss.backward()
    assert_close(z.grad, z_hand.grad)
    # the state after the three epochs: sample 0 = t2[1], sample 1 = t1[0], sample 2 = t2[0]
    assert_close(method.targets, torch.stack([t2[1], t1[0], t2[0]]))
    assert method.state_bytes == 3 * 3 * 4  # N × C fp32


def test_elr_first_visit_target_is_the_scaled_own_prediction_and_unseen_samples_have_none():
    method = EarlyLearningRegularization(weight=3.0, beta=0.7)
    method.setup(num_samples=3, num_classes=3, device=CPU, epochs=1)
    index = torch.tensor([2, 0])
    loss = method.loss(Z, (X, Y, index), 0)
    # t starts at 0, no bias correction: at the first visit t = (1 − β) p̂, the step's own prediction
    t = 0.3 * renormalised(Z)
    assert_close(method.targets[index], t)
    assert method.targets[1].eq(0).all()  # not in the batch: untouched
    assert_close(loss, elr_by_hand(Z, Y, t, 3.0))


def test_elr_clamp_keeps_the_log_finite_for_a_confident_prediction():
    method = EarlyLearningRegularization(weight=2.0, beta=0.0)  # β = 0: t = p̂, summing to 1 at once
    method.setup(num_samples=2, num_classes=3, device=CPU, epochs=1)
    confident = torch.tensor([[30.0, 0.0, 0.0], [0.0, 0.0, 40.0]])  # softmax rounds to onehot in fp32
    unclamped = softmax(confident)
    assert torch.isinf(torch.log(1 - (unclamped * unclamped).sum(dim=1))).all()  # log 0 without the clamp
    loss = method.loss(confident, (X, Y, INDEX), 0)
    # p clamped to [1e-4, 1 − 1e-4]: ⟨p, p̂⟩ ≤ 1 − 1e-4
    assert torch.isfinite(loss)
    assert_close(method.targets, renormalised(confident))
    assert_close(loss, elr_by_hand(confident, Y, renormalised(confident), 2.0))


def test_elr_in_the_trainer_updates_every_sample_once_per_epoch():
    trainer = toy_trainer(EarlyLearningRegularization(weight=3.0, beta=0.7), epochs=3)
    trainer.fit()
    # after n visits t sums to (1 − β) Σ_k<n β^k = 1 − βⁿ
    sums = trainer.method.targets.sum(dim=1)
    assert_close(sums, torch.full((64,), 1 - 0.7**3))
