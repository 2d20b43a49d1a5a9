"""Several processes, one training run: DDP under `torchrun`, with the buffer equal on every rank.

    torchrun --nproc_per_node=4 -m lstsd_edu train --dataset cifar100 --model resnet32 --method lstsd

W processes ("ranks") train one model with PyTorch's DistributedDataParallel (DDP). The trainer
asks one object, `Replicas`, for the three things that change; in a single process each of
them is a no-op, so the ordinary path pays nothing.

**Sharding.** Every rank draws the same epoch order from the same seed. The trainer's global
batch k holds the order's positions [kB, (k+1)B); rank r takes every W-th of them, starting at r:

    local batch of rank r  =  global batch[r :: W]          b_r = ⌈(B − r) / W⌉ samples

Over an epoch rank r then sees the order's positions r, r + W, r + 2W, … — the rule of
PyTorch's `DistributedSampler` — but without its padding: no sample is seen twice, and the last
global batch may split unequally (37 → 19 + 18). A last batch smaller than W would leave some
rank nothing to train on; every rank skips it (those samples get no record that epoch, which the
buffer already handles: their teachers are missing and CE takes their weight).

**Gradients.** Each rank's loss is the mean over its own b_r samples. DDP's usual average,
(1/W) Σ_r, would overweight the samples of a short shard, so a communication hook weighs
rank r's gradient by b_r / B before the all-reduce sum:

    g = Σ_r (b_r / B) · (1/b_r) Σ_{i ∈ r} ∇ℓ_i  =  (1/B) Σ_i ∇ℓ_i       the one-process gradient

**The buffer.** A sample's record for epoch e is written by the one rank that trained on it. The
teachers read during epoch e are records from epochs before e, so the ranks need to agree only
when the epoch ends: `sync_buffer` all-gathers the epoch's new records *by sample index* and
every rank writes all of them. Each rank then holds the whole buffer — replicated, as the model
is; N·C·slots·2 bytes per rank (dense), which is what the `topk` storage is for on large
problems (`buffer.memory_table`). The records travel as raw bytes, so they arrive bit for
bit; the cost is one all-gather of N records per epoch, in chunks of at most 64 MB.

**Metrics.** The epoch's loss and accuracy sums are all-reduced, so every rank reports the
global numbers. Evaluation runs on every rank over the whole test set (same model, same result).

Not synchronised: BatchNorm's running statistics stay per rank (DDP's default, it broadcasts
rank 0's at each forward), and per-sample state a method keeps *outside* its `SnapshotBuffer`.
So a method whose per-sample state is a `SnapshotBuffer`, or a model teacher that every rank
copies alike, or no state at all, trains as one process would; a method that keeps per-sample
state elsewhere declares `supports_ddp = False`, and the `Trainer` refuses to run it on several
ranks.

`spawn(fn, W, ...)` runs a function in W local CPU processes joined by gloo over loopback — the
stand-in for torchrun that the tests and the notebook use.
"""

from __future__ import annotations

import gc
import os
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

SYNC_CHUNK_BYTES = 64 << 20  # the most bytes one all-gather of buffer records sends per rank


# ---------------------------------------------------------------------------------------------
# Joining and leaving the process group
# ---------------------------------------------------------------------------------------------
def launched() -> bool:
    """True inside a process started by torchrun (or `spawn`) with more than one rank."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def active() -> bool:
    """True when a process group of more than one rank is up."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def init(device: torch.device, timeout_s: float = 600.0) -> tuple[int, int]:
    """Join the process group torchrun describes in the environment; returns (rank, world size).

    NCCL when training on CUDA (rank r uses GPU LOCAL_RANK), gloo on CPU. Outside torchrun it
    does nothing and returns (0, 1), so a script calls it unconditionally.
    """
    if not launched() or active():
        return rank(), world_size()
    if device.type == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend, timeout=timedelta(seconds=timeout_s))
    return rank(), world_size()


def teardown() -> None:
    """Leave the process group (if one is up). Drop the trainer first: a DDP wrapper freed
    after its group is gone can abort the process."""
    if dist.is_available() and dist.is_initialized():
        gc.collect()  # free DDP wrappers left in reference cycles while the group is still up
        dist.destroy_process_group()


# ---------------------------------------------------------------------------------------------
# What the trainer asks of the process group
# ---------------------------------------------------------------------------------------------
class _Weight:
    """The communication hook's state: this rank's share b_r / B of the current global batch."""

    value = 1.0


def _weighted_allreduce(state, bucket):  # no annotations: DDP checks them, and ours are strings
    """DDP communication hook: g ← Σ_r (b_r / B) g_r instead of DDP's (1/W) Σ_r g_r."""
    grads = bucket.buffer().mul_(state.value)
    return dist.all_reduce(grads, async_op=True).get_future().then(lambda fut: fut.value()[0])


class Replicas:
    """This process's part in training one model on W ranks (a no-op when W = 1).

    `model` is what the training forward pass calls: the DDP wrapper on W > 1 ranks, the model
    itself otherwise. The trainer keeps the bare model for evaluation and checkpoints.
    """

    def __init__(self, model: nn.Module) -> None:
        self.active, self.rank, self.size = active(), rank(), world_size()
        self.model = model
        if self.active:
            from torch.nn.parallel import DistributedDataParallel

            on_cuda = next(model.parameters()).is_cuda
            self.model = DistributedDataParallel(model, device_ids=[torch.cuda.current_device()] if on_cuda else None)
            self.weight = _Weight()
            self.model.register_comm_hook(self.weight, _weighted_allreduce)

    def shard(self, batches: Iterator[tuple]) -> Iterator[tuple]:
        """This rank's share of each global batch `(x, y, index)`; the batches themselves if W = 1."""
        return self._shard(batches) if self.active else batches

    def _shard(self, batches: Iterator[tuple]) -> Iterator[tuple]:
        for x, y, index in batches:
            total = y.shape[0]  # B, the global batch
            if total < self.size:  # some rank would get no sample: all skip it
                continue
            local = slice(self.rank, None, self.size)  # positions r, r + W, …
            self.weight.value = len(range(total)[local]) / total  # b_r / B for the gradient hook
            yield x[local], y[local], index[local]

    def end_epoch(
        self, buffer, epoch: int, loss_sum: torch.Tensor, correct: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Share the epoch's records (`sync_buffer`) and sum the metrics over the ranks."""
        if not self.active:
            return loss_sum, correct
        if buffer is not None:
            sync_buffer(buffer, epoch)
        sums = torch.stack([loss_sum.double(), correct.double()])  # [2], exact for counts < 2^53
        dist.all_reduce(sums)
        return sums[0], sums[1].long()


@torch.no_grad()
def sync_buffer(buffer, epoch: int) -> int:
    """All-gather, by sample index, the records this rank wrote during `epoch`; every rank
    writes every record. Returns how many records the epoch holds now (on every rank).

    The records of `epoch` on this rank are those whose slot carries the stamp `epoch`: a slot
    never held that epoch before, so no bookkeeping of indices is needed. Each row travels as
    bytes — [index (int64) | values | classes (topk)] — so any storage dtype arrives exactly.
    """
    slot = buffer.slot(epoch)
    mine = (buffer.stamp[slot] == epoch).nonzero().squeeze(1)  # [n_r] sample indices
    parts = [mine[:, None], buffer.values[slot, mine]]  # [n_r, 1] int64, [n_r, width]
    if buffer.classes is not None:
        parts.append(buffer.classes[slot, mine])  # [n_r, k] class ids of a topk record
    widths = [p.shape[1] * p.element_size() for p in parts]  # bytes per row of each part
    rows = torch.cat([p.contiguous().view(torch.uint8) for p in parts], dim=1)  # [n_r, Σ widths]

    counts = [torch.zeros(1, dtype=torch.long, device=mine.device) for _ in range(world_size())]
    dist.all_gather(counts, torch.tensor([len(mine)], device=mine.device))
    counts = [int(c) for c in counts]
    most = max(counts)
    chunk = max(1, min(most, SYNC_CHUNK_BYTES // rows.shape[1]))
    for start in range(0, most, chunk):  # every rank runs the same number of gathers
        piece = torch.zeros(chunk, rows.shape[1], dtype=torch.uint8, device=rows.device)
        own = rows[start : start + chunk]
        piece[: len(own)] = own
        gathered = [torch.empty_like(piece) for _ in counts]
        dist.all_gather(gathered, piece)
        received = torch.cat([g[: max(0, min(chunk, n - start))] for g, n in zip(gathered, counts)])
        index, values, *classes = received.split(widths, dim=1)
        index = index.contiguous().view(torch.long).squeeze(1)  # [n]
        buffer.values[slot, index] = values.contiguous().view(buffer.values.dtype)
        if classes:
            buffer.classes[slot, index] = classes[0].contiguous().view(buffer.classes.dtype)
        buffer.stamp[slot, index] = epoch
    return sum(counts)


# ---------------------------------------------------------------------------------------------
# Local multi-process runs on CPU (tests, notebooks): gloo over loopback
# ---------------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spawned(local_rank: int, fn: Callable, world: int, port: int, out: str, args: tuple) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(local_rank),
        LOCAL_RANK=str(local_rank),
        WORLD_SIZE=str(world),
    )
    if sys.platform.startswith("linux"):
        os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")  # loopback only
    elif sys.platform == "darwin":
        os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo0")
    torch.set_num_threads(1)
    dist.init_process_group("gloo", timeout=timedelta(seconds=120))
    try:
        torch.save(fn(*args), Path(out) / f"rank{local_rank}.pt")
    finally:
        teardown()


def spawn(fn: Callable, world: int, *args, timeout_s: float = 300.0) -> list:
    """Run `fn(*args)` in `world` new CPU processes joined by gloo on 127.0.0.1, as torchrun
    would; returns each rank's return value, in rank order. `fn` must be importable (defined in
    a module, not a notebook cell). Processes still running after `timeout_s` are killed."""
    import torch.multiprocessing as mp

    with tempfile.TemporaryDirectory() as out:
        context = mp.start_processes(
            _spawned, args=(fn, world, _free_port(), out, args), nprocs=world, join=False, start_method="spawn"
        )
        deadline = time.monotonic() + timeout_s
        while not context.join(timeout=1.0):
            if time.monotonic() > deadline:
                for process in context.processes:
                    process.kill()
                raise TimeoutError(f"spawn: {world} processes still running after {timeout_s:g} s")
        return [torch.load(Path(out) / f"rank{r}.pt", weights_only=False) for r in range(world)]
