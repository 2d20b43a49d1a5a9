"""DDP equivalence: two CPU processes (gloo, loopback) against one process, record by record.

Both runs see the same global batches; the two-rank run splits each of them (the last one
unequally, 21 → 11 + 10). Each rank must end with the same buffer as the other rank, and as
the single process: same stamps exactly, same records (fp16, within one rounding step), and
the same model parameters up to floating-point summation order.
"""

import torch

from lstsd_edu import distributed, experiments
from lstsd_edu.buffer import SnapshotBuffer
from lstsd_edu.data import load_cifar, make_cifar_like
from lstsd_edu.experiments import preset

WORLD = 2
N_TRAIN, BATCH = 149, 32  # 4 full global batches, then 21 samples: 11 on rank 0, 10 on rank 1


def config():
    # an MLP: no BatchNorm, whose statistics would (by design) differ per rank
    return preset(
        "cifar10", model="mlp", width=32, epochs=4, batch_size=BATCH, lag=2, long_mode="sliding", device="cpu"
    )


def record_value(epoch: int, index: torch.Tensor, classes: int) -> torch.Tensor:
    """A recognisable record: exact in fp16, different for every (epoch, sample, class)."""
    c = torch.arange(classes, dtype=torch.float32)
    return -(epoch + index[:, None].float() / 16 + c / 256)  # [B, C]


def crafted_buffers(rank: int, world: int) -> dict:
    """Rank r records the samples i with i mod W = r (11 samples: 6 and 5), epochs 0–3,
    then `sync_buffer` shares them. Dense and top-k buffers; returns their states."""
    out = {}
    for storage in ("dense", "topk"):
        buffer = SnapshotBuffer(11, 6, 2, "sliding", storage=storage, k=2)
        mine = torch.arange(11)[rank::world]
        for epoch in range(4):
            buffer.record(epoch, mine, record_value(epoch, mine, 6))
            if world > 1:
                assert distributed.sync_buffer(buffer, epoch) == 11
        out[storage] = buffer.state_dict()
    return out


def worker(root: str) -> dict:
    """What each rank runs: the crafted exchange, then real training through the Trainer."""
    data = load_cifar("cifar10", root, download=False)
    report = experiments.train_and_report("lstsd", config(), seed=0, data=data)
    return {"crafted": crafted_buffers(distributed.rank(), distributed.world_size()), **report}


def test_shards_cover_each_global_batch_once_with_gradient_weights():
    replicas = distributed.Replicas(torch.nn.Linear(2, 2))  # no process group: a no-op
    batches = [(torch.arange(n)[:, None].float(), torch.arange(n), torch.arange(n) + 100) for n in (32, 21, 1)]
    assert replicas.shard(iter(batches)) is not None and not replicas.active
    shares = []
    for r in range(WORLD):  # pretend to be rank r of 2
        replicas.active, replicas.rank, replicas.size = True, r, WORLD
        replicas.weight = distributed._Weight()
        weights = []
        for x, y, index in replicas._shard(iter(batches)):
            weights.append(replicas.weight.value)
            assert torch.equal(index, y + 100) and torch.equal(x[:, 0], y.float())
        shares.append((list(replicas._shard(iter(batches))), weights))
    for k, total in enumerate((32, 21)):
        parts = [shares[r][0][k][2] for r in range(WORLD)]
        assert sorted(torch.cat(parts).tolist()) == list(range(100, 100 + total))  # each sample once
        assert sum(shares[r][1][k] for r in range(WORLD)) == 1.0  # Σ_r b_r / B
    assert [len(p[2]) for p in (shares[0][0][1], shares[1][0][1])] == [11, 10]
    assert len(shares[0][0]) == 2  # the 1-sample batch cannot feed 2 ranks: skipped by both


def test_two_gloo_ranks_match_one_process(tmp_path):
    torch.set_num_threads(1)
    make_cifar_like(tmp_path, "cifar10", num_train=N_TRAIN, num_test=40)
    ranks = distributed.spawn(worker, WORLD, str(tmp_path), timeout_s=240)
    alone = experiments.train_and_report(
        "lstsd", config(), seed=0, data=load_cifar("cifar10", tmp_path, download=False)
    )
    expected = crafted_buffers(0, 1)  # one process records every sample itself

    # 1. the exchange itself is exact: both ranks hold exactly the single-process buffer
    for storage in ("dense", "topk"):
        for rank in ranks:
            for name, tensor in expected[storage].items():
                assert torch.equal(rank["crafted"][storage][name], tensor), (storage, name)

    # 2. training: the ranks agree with each other bit for bit ...
    r0, r1 = ranks
    for name in r0["buffer"]:
        assert torch.equal(r0["buffer"][name], r1["buffer"][name])
    for name in r0["model"]:
        assert torch.equal(r0["model"][name], r1["model"][name])
    # ... and with the single process, record by record
    assert torch.equal(r0["buffer"]["stamp"], alone["buffer"]["stamp"])
    assert (alone["buffer"]["stamp"] == 3).any(0).all()  # every sample has a record of the last epoch
    torch.testing.assert_close(
        r0["buffer"]["values"].float(), alone["buffer"]["values"].float(), rtol=1e-3, atol=1e-3
    )  # fp16: at most a rounding step apart
    for name, tensor in alone["model"].items():
        torch.testing.assert_close(r0["model"][name], tensor, rtol=1e-4, atol=1e-5)
    for column in ("train_loss", "train_acc", "test_loss", "test_acc"):
        torch.testing.assert_close(
            torch.tensor(r0["history"][column].to_numpy()),
            torch.tensor(alone["history"][column].to_numpy()),
            rtol=1e-4,
            atol=1e-5,
        )
