"""SnapshotBuffer bookkeeping: which epoch teaches, ring wrap-around, unseen samples, memory."""

import pytest
import torch

from lstsd_edu.buffer import SnapshotBuffer, buffer_bytes
from lstsd_edu.errors import ConfigError

N, C = 6, 4


def record_value(epoch: int, index: torch.Tensor) -> torch.Tensor:
    """A recognisable record: class 0 holds the epoch, class 1 the sample index (exact in fp16)."""
    values = torch.full((index.shape[0], C), -50.0)
    values[:, 0] = -float(epoch)
    values[:, 1] = -index.float()
    return values


def run_epochs(buffer: SnapshotBuffer, epochs: int, seen=lambda e: torch.arange(N), batch=4):
    """Record `epochs` epochs, in batches (the last one partial), of the samples `seen(e)`."""
    for e in range(epochs):
        index = seen(e)
        for start in range(0, len(index), batch):
            part = index[start : start + batch]
            buffer.record(e, part, record_value(e, part))


def epoch_of(log_probs: torch.Tensor) -> torch.Tensor:
    return -log_probs[..., 0]


@pytest.mark.parametrize("lag", [1, 2, 3, 5])
def test_sliding_teachers_are_e_minus_1_and_e_minus_lag(lag):
    buffer = SnapshotBuffer(N, C, lag, "sliding", dtype=torch.float32)
    assert buffer.slots == lag + 1
    index = torch.arange(N)
    for e in range(12):  # 12 epochs: the ring of lag + 1 slots wraps around several times
        t = buffer.teachers(e, index)
        assert t.valid[0].tolist() == [e - lag >= 0] * N
        assert t.valid[1].tolist() == [e - 1 >= 0] * N
        if e - lag >= 0:
            assert epoch_of(t.log_probs[0]).tolist() == [e - lag] * N
            assert (-t.log_probs[0][:, 1]).tolist() == index.float().tolist()  # each sample its own
        if e >= 1:
            assert epoch_of(t.log_probs[1]).tolist() == [e - 1] * N
        buffer.record(e, index, record_value(e, index))


@pytest.mark.parametrize("lag", [1, 2, 3, 4])
def test_phase_teacher_is_last_epoch_of_previous_phase(lag):
    buffer = SnapshotBuffer(N, C, lag, "phase", dtype=torch.float32)
    assert buffer.slots == 3
    index = torch.arange(N)
    for e in range(14):
        expected_long = (e // lag) * lag - 1  # phases [0, L), [L, 2L), ...
        assert buffer.long_epoch(e) == expected_long
        t = buffer.teachers(e, index)
        assert bool(t.valid[0].all()) == (expected_long >= 0)
        assert bool(t.valid[1].all()) == (e >= 1)
        if expected_long >= 0:
            assert epoch_of(t.log_probs[0]).tolist() == [expected_long] * N
        if e >= 1:
            assert epoch_of(t.log_probs[1]).tolist() == [e - 1] * N
        buffer.record(e, index, record_value(e, index))


def test_partial_last_batch_and_shuffled_order_are_all_recorded():
    buffer = SnapshotBuffer(N, C, 2, "sliding", dtype=torch.float32)
    order = torch.tensor([4, 0, 5, 2, 1, 3])
    run_epochs(buffer, 1, seen=lambda e: order, batch=4)  # batches of 4 and 2
    records, valid = buffer.log_probs([0], torch.arange(N))
    assert valid.all()
    assert (-records[0, :, 1]).tolist() == list(range(N))  # every row landed at its own index


@pytest.mark.parametrize("mode", ["sliding", "phase"])
def test_samples_not_seen_in_an_epoch_have_no_teacher_from_it(mode):
    buffer = SnapshotBuffer(N, C, 2, mode, dtype=torch.float32)
    # sample 3 is skipped in epoch 1; samples 4 and 5 in epoch 0
    seen = {0: torch.tensor([0, 1, 2, 3]), 1: torch.tensor([0, 1, 2, 4, 5])}
    run_epochs(buffer, 2, seen=lambda e: seen[e])
    t = buffer.teachers(2, torch.arange(N))
    # short-term teacher at epoch 2 is epoch 1: sample 3 was not seen then
    assert t.valid[1].tolist() == [True, True, True, False, True, True]
    # long-term teacher at epoch 2 is epoch 0 in sliding (lag 2) and epoch 1 in phase (L = 2)
    expected = seen[0] if mode == "sliding" else seen[1]
    assert t.valid[0].tolist() == [i in expected.tolist() for i in range(N)]


def test_wrap_around_never_returns_a_stale_record():
    """A slot reused by a later epoch must not pass for the epoch asked for."""
    buffer = SnapshotBuffer(N, C, 2, "sliding", dtype=torch.float32)  # 3 slots
    run_epochs(buffer, 1, seen=lambda e: torch.arange(N))  # epoch 0 in slot 0
    # epochs 1..3 see only sample 0, so slot 0 is overwritten at epoch 3 for sample 0 only
    run_epochs(buffer, 4, seen=lambda e: torch.arange(N) if e == 0 else torch.tensor([0]))
    values, valid = buffer.log_probs([0, 3], torch.arange(N))
    # sample 0's epoch-0 record was overwritten by epoch 3; the others' are still epoch 0's
    assert valid[0].tolist() == [False] + [True] * (N - 1)
    assert valid[1].tolist() == [True] + [False] * (N - 1)  # slot 0 holds epoch 0 for them, not 3
    assert epoch_of(values[1, 0]) == 3 and epoch_of(values[0, 1:]).tolist() == [0] * (N - 1)


def test_records_are_fp16_log_probabilities_and_memory_is_reported():
    buffer = SnapshotBuffer(4000, 10, 5, "sliding")
    assert buffer.values.dtype == torch.float16
    assert buffer.nbytes == 4000 * 10 * 6 * 2 + 4000 * 6 * 2  # values + int16 stamps
    assert buffer.nbytes == buffer_bytes(4000, 10, 6)
    phase = SnapshotBuffer(4000, 10, 5, "phase")
    assert phase.nbytes == buffer_bytes(4000, 10, 3)
    # a very negative log-probability is clamped into fp16's range, never -inf
    buffer.record(0, torch.tensor([0]), torch.tensor([[-1e9] + [0.0] * 9]))
    assert torch.isfinite(buffer.values[0, 0]).all()


def test_topk_keeps_k_classes_renormalised():
    buffer = SnapshotBuffer(N, 6, 1, "sliding", storage="topk", k=2, dtype=torch.float32)
    log_p = torch.log_softmax(torch.tensor([[3.0, 1.0, 2.0, 0.0, -1.0, -2.0]]), dim=1)
    buffer.record(0, torch.tensor([1]), log_p)
    out, _valid = buffer.log_probs([0], torch.tensor([1]))
    p = out[0, 0].exp()
    expected = torch.tensor([3.0, 2.0]).softmax(0)  # classes 0 and 2, renormalised
    torch.testing.assert_close(p[[0, 2]], expected)
    assert p[[1, 3, 4, 5]].sum() == 0
    assert buffer.nbytes == 2 * N * (2 * 4 + 2 * 2 + 2)  # 2 slots × (k fp32 values, k int16 classes, stamp)
    assert buffer.nbytes == buffer_bytes(N, 6, 2, "topk", k=2, value_bytes=4)


def test_state_dict_round_trip():
    a = SnapshotBuffer(N, C, 3, "phase")
    run_epochs(a, 5)
    b = SnapshotBuffer(N, C, 3, "phase")
    b.load_state_dict(a.state_dict())
    ta, tb = a.teachers(5, torch.arange(N)), b.teachers(5, torch.arange(N))
    torch.testing.assert_close(ta.log_probs, tb.log_probs)
    assert torch.equal(ta.valid, tb.valid)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(lag=0), "lag"),
        (dict(lag=2.5), "lag"),
        (dict(mode="cyclic"), "long_mode"),
        (dict(storage="sparse"), "storage"),
        (dict(storage="topk", k=0), "k"),
        (dict(dtype=torch.int64), "dtype"),
        (dict(device="gpu9"), "device"),
        (dict(num_samples=0), "num_samples"),
    ],
)
def test_bad_arguments_name_the_parameter(kwargs, message):
    args = dict(num_samples=N, num_classes=C, lag=2) | kwargs
    with pytest.raises(ConfigError, match=message):
        SnapshotBuffer(**args)
