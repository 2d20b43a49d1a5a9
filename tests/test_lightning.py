"""lstsd_edu.lightning: LSTSDCallback in a Lightning run records and trains exactly as LSTSDLoss in a
plain loop over the same batches; its state resumes through Lightning's checkpoints; under DDP every rank
holds every record."""

from types import SimpleNamespace

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

pl = pytest.importorskip(
    "lightning.pytorch", reason="lightning is not installed (pip install 'lstsd-edu[lightning]', or the dev extra)"
)

from lstsd_edu.data import WithIndex, collate_with_index  # noqa: E402
from lstsd_edu.dropin import LSTSDLoss  # noqa: E402
from lstsd_edu.errors import ConfigError  # noqa: E402
from lstsd_edu.lightning import LSTSDCallback  # noqa: E402

SETTINGS = dict(lag=2, w_long=0.3, w_short=0.4, temperature=2.0, ramp=2)
N, C, EPOCHS, BATCH = 50, 5, 4, 8  # 6 batches of 8 and one of 2 per epoch


def signals() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, C, (N,), generator=g)
    return torch.randn(N, 12, generator=g) + nn.functional.one_hot(y, 12).float(), y


def loader() -> DataLoader:
    """The same batches in the same order every epoch, for both loops."""
    return DataLoader(WithIndex(TensorDataset(*signals())), batch_size=BATCH, collate_fn=collate_with_index)


def network() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, C))


def sgd(parameters) -> torch.optim.Optimizer:
    return torch.optim.SGD(parameters, lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)


class Classifier(pl.LightningModule):
    """What a user writes: the loss comes from the callback, the index from the batch."""

    def __init__(self) -> None:
        super().__init__()
        self.net = network()
        self.losses: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y, index = batch
        loss = self.lstsd(self(x), y, index)
        self.losses.append(loss.detach())
        return loss

    def configure_optimizers(self):
        return sgd(self.parameters())


@pytest.fixture
def lightning_trainer(tmp_path):
    """A quiet CPU Trainer; Lightning's `deterministic=True` is a process-wide torch flag, put back after."""
    flag = torch.are_deterministic_algorithms_enabled()

    def make(max_epochs: int, callback: LSTSDCallback) -> pl.Trainer:
        return pl.Trainer(
            max_epochs=max_epochs, accelerator="cpu", deterministic=True, logger=False, enable_checkpointing=False,
            enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
            default_root_dir=tmp_path, callbacks=[callback],
        )  # fmt: skip

    yield make
    torch.use_deterministic_algorithms(flag)


def plain_loop(epochs: int) -> tuple[list[torch.Tensor], nn.Module, LSTSDLoss]:
    net, lstsd = network(), LSTSDLoss(N, C, **SETTINGS, device="cpu")
    optimizer, losses = sgd(net.parameters()), []
    for _ in range(epochs):
        for x, y, index in loader():
            loss = lstsd(net(x), y, index)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.detach())
        lstsd.end_epoch()
    return losses, net, lstsd


def assert_same_training(module, callback, losses, net, lstsd):
    assert torch.equal(torch.stack(module.losses), torch.stack(losses))  # every step, bit for bit
    for a, b in zip(module.net.parameters(), net.parameters()):
        assert torch.equal(a, b)
    assert callback.lstsd.epoch == lstsd.epoch
    for name, tensor in lstsd.buffer.state_dict().items():
        assert torch.equal(callback.lstsd.buffer.state_dict()[name], tensor), name


def test_callback_trains_as_the_plain_loop(lightning_trainer):
    module, callback = Classifier(), LSTSDCallback(N, C, **SETTINGS)
    lightning_trainer(EPOCHS, callback).fit(module, loader())
    assert module.lstsd is callback.lstsd and len(module.losses) == EPOCHS * 7
    buffer = callback.lstsd.buffer
    assert (buffer.stamp == torch.tensor([3, 1, 2])[:, None]).all()  # epochs 1–3 in slots e mod 3
    assert_same_training(module, callback, *plain_loop(EPOCHS))


def test_resume_from_a_lightning_checkpoint(lightning_trainer, tmp_path):
    first, callback = Classifier(), LSTSDCallback(N, C, **SETTINGS)
    trainer = lightning_trainer(2, callback)
    trainer.fit(first, loader())
    trainer.save_checkpoint(tmp_path / "two.ckpt")

    resumed, callback = Classifier(), LSTSDCallback(N, C, **SETTINGS)
    lightning_trainer(EPOCHS, callback).fit(resumed, loader(), ckpt_path=tmp_path / "two.ckpt")
    assert len(resumed.losses) == (EPOCHS - 2) * 7
    resumed.losses = first.losses + resumed.losses
    assert_same_training(resumed, callback, *plain_loop(EPOCHS))


def test_a_checkpoint_from_before_the_epochs_end_resumes_at_the_next_epoch():
    """Lightning saves at validation's end, after the epoch's last step but before the epoch ends;
    it resumes at the next epoch, and the callback closes the saved one first."""
    x, y = signals()
    fake_trainer = SimpleNamespace(strategy=SimpleNamespace(root_device=torch.device("cpu")), current_epoch=0)
    saving = LSTSDCallback(N, C, **SETTINGS)
    saving.setup(fake_trainer, SimpleNamespace(), "fit")
    saving.lstsd(x[:, :C], y, torch.arange(N))  # the whole epoch 0, not yet ended
    state = saving.state_dict()

    resuming = LSTSDCallback(N, C, **SETTINGS)
    resuming.load_state_dict(state)  # before setup, as when validating first
    module = SimpleNamespace()
    resuming.setup(fake_trainer, module, "fit")
    assert module.lstsd is resuming.lstsd and resuming.lstsd.epoch == 0
    resuming.on_train_epoch_start(SimpleNamespace(current_epoch=1), module)
    assert resuming.lstsd.epoch == 1 and (resuming.lstsd.buffer.stamp[0] == 0).all()
    with pytest.raises(ConfigError, match="LSTSD's epoch must be Lightning's; got 1 and 3"):
        resuming.on_train_epoch_start(SimpleNamespace(current_epoch=3), module)


def test_bad_settings_fail_when_the_callback_is_made():
    with pytest.raises(ConfigError, match="lag"):
        LSTSDCallback(N, C, lag=0)
    with pytest.raises(ConfigError, match=r"settings must be LSTSD's .* got device, lr"):
        LSTSDCallback(N, C, device="cpu", lr=0.1)


class EveryRankWritesItsRecords(Classifier):
    def on_train_end(self):
        torch.save(
            {"steps": len(self.losses), "stamp": self.lstsd.buffer.stamp, "values": self.lstsd.buffer.values},
            self.trainer.default_root_dir + f"/rank{self.global_rank}.pt",
        )


def test_under_ddp_every_rank_gets_the_records_of_the_samples_the_others_trained_on(tmp_path):
    """Two CPU processes (Lightning's ddp_spawn, gloo): each trains on its half of the samples
    (Lightning's distributed sampler), and after each epoch both hold every sample's record."""
    trainer = pl.Trainer(
        max_epochs=3, accelerator="cpu", devices=2, strategy="ddp_spawn", logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, default_root_dir=str(tmp_path),
        callbacks=[LSTSDCallback(N, C, **SETTINGS)],
    )  # fmt: skip
    trainer.fit(EveryRankWritesItsRecords(), loader())
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    assert [r["steps"] for r in ranks] == [3 * 4, 3 * 4]  # 25 samples a rank: batches of 8, 8, 8, 1
    for r in ranks:
        assert (r["stamp"] == torch.tensor([0, 1, 2])[:, None]).all()  # every sample, every epoch
        assert torch.equal(r["values"], ranks[0]["values"])
