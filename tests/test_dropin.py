"""lstsd_edu.dropin: LSTSDLoss in a plain loop trains bit for bit as the Trainer does; any order of
samples, partial batches, DataLoader workers, checkpoints, bf16 autocast logits, DDP, bad input."""

import io
import math

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lstsd_edu import distributed
from lstsd_edu.config import build_method
from lstsd_edu.data import Dataset, WithIndex, collate_with_index
from lstsd_edu.dropin import LSTSDLoss
from lstsd_edu.errors import ConfigError
from lstsd_edu.methods import cosine_schedule
from lstsd_edu.models import build_model
from lstsd_edu.trainer import Trainer, seed_everything

SETTINGS = dict(lag=2, w_long=0.3, w_short=0.4, temperature=2.0, ramp=2)
N, C = 50, 5


def blobs(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n noisy signals [n, 1, 24] of C classes: a class is a bump at its own place."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, C, (n,), generator=g)
    where = torch.arange(24)[None, :] - (4 * y[:, None] + 3)
    x = torch.exp(-0.5 * where.float() ** 2)[:, None, :] + 0.5 * torch.randn(n, 1, 24, generator=g)
    return x, y


@pytest.fixture(scope="module")
def data() -> Dataset:
    """500 training samples: with batch 64, seven full batches and a last one of 52."""
    x_train, y_train = blobs(500, 0)
    x_test, y_test = blobs(100, 1)
    return Dataset.from_arrays(x_train, y_train, x_test, y_test, num_classes=C)


def step_loop(model, loader, lstsd, optimizer, scheduler=None) -> list[torch.Tensor]:
    """One epoch of the plainest loop; returns each step's loss."""
    losses = []
    for x, y, index in loader:
        loss = lstsd(model(x), y, index)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        losses.append(loss.detach())
    lstsd.end_epoch()
    return losses


def test_a_plain_loop_trains_bit_for_bit_as_the_trainer(data):
    epochs, batch_size, lr, momentum, weight_decay, seed = 6, 64, 0.05, 0.9, 5e-4, 3

    seed_everything(seed)
    model = build_model("cnn1d", data.input_shape, C, width=8)
    trainer = Trainer(
        model, build_method("lstsd", **SETTINGS), data, epochs=epochs, batch_size=batch_size, lr=lr,
        momentum=momentum, weight_decay=weight_decay, seed=seed, device="cpu", progress=False,
    )  # fmt: skip
    history = trainer.fit()

    # the loop a user writes: same model seed, batch order and optimiser, LSTSD as a loss
    seed_everything(seed)
    model = build_model("cnn1d", data.input_shape, C, width=8)
    lstsd = LSTSDLoss(len(data.train), C, **SETTINGS, epochs=epochs, device="cpu")
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=True)
    scheduler = cosine_schedule(optimizer, epochs * math.ceil(len(data.train) / batch_size))
    order = torch.Generator().manual_seed(seed)
    train_loss = []
    for _ in range(epochs):
        model.train()
        loss_sum = torch.zeros(())
        for x, y, index in data.train.batches(batch_size, generator=order):
            loss = lstsd(model(x), y, index)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            loss_sum += loss.detach() * len(y)
        lstsd.end_epoch()
        train_loss.append(loss_sum.item() / len(data.train))

    assert train_loss == history.train_loss.tolist()  # bit for bit
    for mine, theirs in zip(model.state_dict().values(), trainer.model.state_dict().values()):
        assert torch.equal(mine, theirs)
    for name, tensor in trainer.method.buffer.state_dict().items():
        assert torch.equal(lstsd.buffer.state_dict()[name], tensor), name
    assert lstsd.epoch == epochs and (lstsd.buffer.stamp == torch.arange(epochs - 3, epochs)[:, None]).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_under_bf16_autocast_on_cuda_the_loop_follows_the_trainer(data):
    """On CUDA the Trainer trains under bf16 autocast; the same loop with the same autocast region
    follows it (an MLP: no convolution whose backward may sum in another order)."""
    epochs, batch_size, seed = 4, 64, 0
    seed_everything(seed)
    model = build_model("mlp", data.input_shape, C, width=32)
    trainer = Trainer(
        model, build_method("lstsd", **SETTINGS), data, epochs=epochs, batch_size=batch_size, seed=seed,
        device="cuda", progress=False,
    )  # fmt: skip
    history = trainer.fit()

    seed_everything(seed)
    model = build_model("mlp", data.input_shape, C, width=32).cuda()
    lstsd = LSTSDLoss(len(data.train), C, **SETTINGS, device="cuda")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=True)
    scheduler = cosine_schedule(optimizer, epochs * math.ceil(len(data.train) / batch_size))
    order, train = torch.Generator().manual_seed(seed), data.train.to("cuda")
    train_loss = []
    for _ in range(epochs):
        loss_sum = torch.zeros((), device="cuda")
        for x, y, index in train.batches(batch_size, generator=order):
            with torch.autocast("cuda", dtype=torch.bfloat16):
                logits = model(x)
                loss = lstsd(logits, y, index)
            assert logits.dtype == torch.bfloat16 and loss.dtype == torch.float32
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            loss_sum += loss.detach() * len(y)
        lstsd.end_epoch()
        train_loss.append(loss_sum.item() / len(data.train))

    torch.testing.assert_close(train_loss, history.train_loss.tolist(), rtol=1e-5, atol=1e-6)
    for mine, theirs in zip(model.state_dict().values(), trainer.model.state_dict().values()):
        torch.testing.assert_close(mine, theirs, rtol=1e-5, atol=1e-6)
    assert torch.equal(lstsd.buffer.stamp, trainer.method.buffer.stamp)


def shuffled_loader(x, y, batch_size, workers=2, seed=0):
    return DataLoader(
        WithIndex(TensorDataset(x, y)), batch_size=batch_size, shuffle=True, num_workers=workers,
        collate_fn=collate_with_index, generator=torch.Generator().manual_seed(seed), persistent_workers=workers > 0,
    )  # fmt: skip


def test_workers_any_order_and_a_partial_batch_record_every_sample_once_per_epoch():
    """Batches of 7 over 50 samples (the last holds 1), shuffled by two worker processes: every
    sample's record of every epoch is its own log softmax(z / τ) from the step that saw it."""
    x, y = blobs(N, 2)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(24, C))
    lstsd = LSTSDLoss(N, C, **SETTINGS, device="cpu")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    loader = shuffled_loader(x, y, batch_size=7)
    orders = []
    for epoch in range(4):
        seen = torch.zeros(N, dtype=torch.long)
        expected = torch.zeros(N, C)
        sizes = []
        for xb, yb, index in loader:
            logits = model(xb)
            loss = lstsd(logits, yb, index)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            seen[index] += 1
            expected[index] = (logits.detach() / SETTINGS["temperature"]).log_softmax(1)
            sizes.append(len(index))
            orders.append(index)
        lstsd.end_epoch()
        assert sizes == [7] * 7 + [1]
        assert (seen == 1).all()
        slot = lstsd.buffer.slot(epoch)
        assert (lstsd.buffer.stamp[slot] == epoch).all()
        assert torch.equal(lstsd.buffer.values[slot], expected.half())
    assert not torch.equal(orders[0], orders[8])  # a new order each epoch


def test_state_dict_round_trip_between_epochs_and_mid_epoch():
    """Stop at the start of the third epoch, or 3 steps into it, save model, optimiser and loss to
    a file and start again from it: training goes on exactly as without the stop."""
    x, y = blobs(N, 4)
    g = torch.Generator().manual_seed(0)
    batches = [torch.randperm(N, generator=g).split(8) for _ in range(4)]  # 6 × 8 + 2 per epoch

    def fresh():
        torch.manual_seed(0)
        model = nn.Sequential(nn.Flatten(), nn.Linear(24, C))
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        return model, optimizer, LSTSDLoss(N, C, **SETTINGS, epochs=4, device="cpu")

    def run(stop_at=None):
        model, optimizer, lstsd = fresh()
        losses = []
        for epoch_batches in batches:
            for index in epoch_batches:
                if len(losses) == stop_at:
                    file = io.BytesIO()
                    torch.save([model.state_dict(), optimizer.state_dict(), lstsd.state_dict()], file)
                    file.seek(0)
                    model, optimizer, lstsd = fresh()
                    for part, state in zip((model, optimizer, lstsd), torch.load(file)):
                        part.load_state_dict(state)
                loss = lstsd(model(x[index]), y[index], index)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                losses.append(loss.item())
            lstsd.end_epoch()
        return losses, lstsd

    straight, a = run()
    assert len(straight) == 4 * 7
    for stop_at in (14, 17):  # the first step of epoch 2, and 3 steps into it
        resumed, b = run(stop_at)
        assert resumed == straight, stop_at
        for name, tensor in a.buffer.state_dict().items():
            assert torch.equal(b.buffer.state_dict()[name], tensor)


def test_bf16_autocast_logits_on_the_cpu():
    """Logits from a CPU bf16 autocast region: the loss is fp32, the same as for those logits
    made fp32 outside autocast, and the gradient reaches the bf16 logits."""
    x, y = blobs(N, 5)
    model = nn.Sequential(nn.Flatten(), nn.Linear(24, C))
    amp, full = (LSTSDLoss(N, C, **SETTINGS, device="cpu") for _ in range(2))
    index = torch.arange(N)
    for epoch in range(3):  # plain CE at epoch 0, then both teachers
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = model(x)
            loss = amp(logits, y, index)
        assert logits.dtype == torch.bfloat16 and loss.dtype == torch.float32
        twin = logits.detach().float().requires_grad_()
        reference = full(twin, y, index)
        torch.testing.assert_close(loss, reference, rtol=0, atol=0)
        loss.backward()
        reference.backward()
        assert model[1].weight.grad is not None and torch.isfinite(model[1].weight.grad).all()
        model.zero_grad()
        amp.end_epoch()
        full.end_epoch()
        assert torch.equal(amp.buffer.values, full.buffer.values)
        assert amp.method.teaching(epoch) == (epoch > 0)


def test_defaults_and_settings_follow_config():
    from lstsd_edu.config import Config

    lstsd = LSTSDLoss(10, 3, device="cpu")
    method = lstsd.method
    assert (method.lag, method.w_long, method.w_short, method.temperature, method.ramp) == (
        Config.lag, Config.w_long, Config.w_short, Config.temperature, Config.ramp,
    )  # fmt: skip
    assert lstsd.buffer.slots == Config.lag + 1 and lstsd.device == torch.device("cpu")
    assert "LSTSDLoss(num_samples=10, num_classes=3" in repr(lstsd)


# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "settings, parameter",
    [
        (dict(lag=0), "lag"),
        (dict(w_long=0.7, w_short=0.6), r"w_long \+ w_short must be at most 1"),
        (dict(temperature=0), "temperature"),
        (dict(long_mode="both"), "long_mode"),
        (dict(epochs=0), "epochs"),
        (dict(device="tpu"), "device"),
        (dict(num_classes=1), "num_classes"),
    ],
)
def test_bad_settings_fail_with_the_config_rules(settings, parameter):
    args = dict(num_samples=N, num_classes=C, device="cpu") | settings
    with pytest.raises(ConfigError, match=parameter):
        LSTSDLoss(**args)


def batch(b=4, **replace):
    parts = dict(logits=torch.zeros(b, C, requires_grad=True), targets=torch.zeros(b, dtype=torch.long))
    parts["index"] = torch.arange(b)
    return parts | replace


@pytest.mark.parametrize(
    "parts, message",
    [
        (batch(index=torch.tensor([0, 1, 2, N])), r"index must hold sample indices in \[0, num_samples\)"),
        (batch(index=torch.tensor([-1, 1, 2, 3])), "got values from -1 to 3"),
        (batch(index=torch.arange(4.0)), "index must be an integer tensor"),
        (batch(index=torch.ones(4, dtype=torch.bool)), "index must be an integer tensor"),
        (batch(index=torch.arange(4)[:, None]), r"index must be an integer tensor \[B\]; got shape \[4, 1\]"),
        (batch(index=[0, 1, 2, 3]), "index must be an integer tensor \\[B\\]; got a list"),
        (batch(index=torch.arange(3)), r"index must have one entry per row of logits \(B = 4\); got 3"),
        (batch(targets=torch.zeros(5, dtype=torch.long)), "targets must have one entry per row"),
        (batch(targets=torch.tensor([0, 1, 2, C])), r"targets must hold class labels in \[0, num_classes\)"),
        (batch(targets=torch.zeros(4)), "targets must be an integer tensor"),
        (batch(logits=torch.zeros(4, C + 1)), r"logits must be a float tensor \[B, num_classes\] = \[B, 5\]"),
        (batch(logits=torch.zeros(4 * C)), "logits must be a float tensor"),
        (batch(logits=torch.zeros(4, C, dtype=torch.long)), "logits must be a float tensor"),
        (batch(logits=torch.zeros(4, C, device="meta")), "logits must be on cpu"),
        (batch(b=0), "at least one sample"),
    ],
)
def test_bad_batches_fail_with_a_message(parts, message):
    lstsd = LSTSDLoss(N, C, device="cpu")
    with pytest.raises(ConfigError, match=message):
        lstsd(**parts)
    assert lstsd.visited == 0 and not lstsd.started  # nothing happened


def test_misuse_of_the_protocol():
    lstsd = LSTSDLoss(N, C, epochs=1, device="cpu")
    with torch.no_grad(), pytest.raises(ConfigError, match="training steps, with gradients on"):
        lstsd(**batch())
    for _ in range(12):  # 48 samples
        lstsd(**batch())
    with pytest.raises(ConfigError, match=r"at most num_samples = 50 samples; got 52 .* call end_epoch\(\)"):
        lstsd(**batch())
    lstsd.end_epoch()
    with pytest.raises(ConfigError, match=r"LSTSDLoss\(epochs=1\) has ended its last epoch; got a training step"):
        lstsd(**batch())
    with pytest.raises(ConfigError, match=r"got end_epoch\(\) in epoch 1"):
        lstsd.end_epoch()
    other = LSTSDLoss(N, C, lag=3, device="cpu")
    with pytest.raises(ConfigError, match=r"same settings; it has lag=10 \(here 3\)"):
        other.load_state_dict(lstsd.state_dict())


# ---------------------------------------------------------------------------------------------
# DDP: two gloo ranks on the CPU share their records when an epoch ends
# ---------------------------------------------------------------------------------------------
def ddp_worker() -> dict:
    """Rank r trains on the samples i ≡ r (mod 2); returns its buffer after 3 epochs."""
    x, y = blobs(N, 6)
    lstsd = LSTSDLoss(N, C, **SETTINGS, device="cpu")
    mine = torch.arange(N)[distributed.rank() :: distributed.world_size()]
    for _ in range(3):
        for index in mine.split(6):
            lstsd(x[index, 0, :C], y[index], index)
        lstsd.end_epoch()
    return lstsd.buffer.state_dict()


def test_records_are_shared_between_ranks_when_an_epoch_ends():
    ranks = distributed.spawn(ddp_worker, 2, timeout_s=240)
    alone = LSTSDLoss(N, C, **SETTINGS, device="cpu")  # one process sees every sample
    x, y = blobs(N, 6)
    for _ in range(3):
        for index in torch.arange(N).split(6):
            alone(x[index, 0, :C], y[index], index)
        alone.end_epoch()
    assert (alone.buffer.stamp == torch.arange(3)[:, None]).all()
    for state in ranks:
        for name, tensor in alone.buffer.state_dict().items():
            assert torch.equal(state[name], tensor), name


def test_the_named_settings_are_the_keyword_arguments():
    import inspect

    from lstsd_edu.dropin import LSTSD_SETTINGS

    keywords = [p.name for p in inspect.signature(LSTSDLoss).parameters.values() if p.kind == p.KEYWORD_ONLY]
    assert keywords == [*LSTSD_SETTINGS, "epochs", "device"]
