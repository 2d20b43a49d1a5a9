"""The fused LSTSD loss against the readable one (`losses.lstsd_loss`): loss, record and gradient."""

import pytest
import torch

from lstsd_edu import fused
from lstsd_edu.buffer import FP16_MAX, Teachers
from lstsd_edu.fused import fused_loss, mixture_table, teacher_mixture
from lstsd_edu.losses import lstsd_loss

W_LONG, W_SHORT = 0.3, 0.5


def make_case(batch: int, classes: int, teachers: str, seed: int = 0):
    """Logits [B, C], labels [B] and teachers at τ with some samples missing one or both teachers.

    teachers: `partial` (each teacher present for about 70% of the samples), `no_long` (no sample
    has a long-term teacher yet) or `topk` (as a top-k buffer returns them: 3 classes kept and
    renormalised, the others at log p = −FP16_MAX, so p = 0).
    """
    g = torch.Generator().manual_seed(seed)
    logits = 3 * torch.randn(batch, classes, generator=g)
    targets = torch.randint(0, classes, (batch,), generator=g)
    valid = torch.rand(2, batch, generator=g) < 0.7
    log_p = torch.log_softmax(2 * torch.randn(2, batch, classes, generator=g), dim=2)  # [2, B, C]
    if teachers == "no_long":
        valid[0] = False
    if teachers == "topk":
        kept, where = log_p.topk(3, dim=2)
        log_p = torch.full_like(log_p, -FP16_MAX).scatter(2, where, kept).log_softmax(2)
    return logits, targets, Teachers(log_p, valid)


def run_fused(logits, targets, teachers, tau):
    z = logits.clone().requires_grad_()
    loss, log_q = fused_loss(z, targets, mixture_table(teacher_mixture(teachers, W_LONG, W_SHORT, tau)), tau)
    loss.backward()
    return loss.detach(), log_q, z.grad


def run_readable(logits, targets, teachers, tau):
    z = logits.clone().requires_grad_()
    loss, log_q = lstsd_loss(z, targets, teachers, W_LONG, W_SHORT, tau)
    loss.backward()
    return loss.detach(), log_q, z.grad


@pytest.mark.parametrize("teachers", ["partial", "no_long", "topk"])
@pytest.mark.parametrize("tau", [1.0, 2.0, 3.0])
@pytest.mark.parametrize("batch", [8, 100])
@pytest.mark.parametrize("classes", [5, 10, 100])
def test_fused_equals_readable(classes, batch, tau, teachers):
    """Loss, record and gradient: against the readable loss in float64 (to float32 rounding) and
    in float32 (to float32 tolerances)."""
    logits, targets, t = make_case(batch, classes, teachers, seed=batch + classes)
    loss, log_q, grad = run_fused(logits, targets, t, tau)

    t64 = Teachers(t.log_probs.double(), t.valid)
    loss64, log_q64, grad64 = run_readable(logits.double(), targets, t64, tau)
    torch.testing.assert_close(loss, loss64.float(), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(log_q, log_q64.float(), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(grad, grad64.float(), rtol=1e-5, atol=1e-8)

    loss32, log_q32, grad32 = run_readable(logits, targets, t, tau)
    torch.testing.assert_close(loss, loss32)
    torch.testing.assert_close(log_q, log_q32)
    torch.testing.assert_close(grad, grad32)


@pytest.mark.parametrize("tau", [1.0, 2.0])
def test_fused_loss_leaves_its_arguments_as_they_are(tau):
    logits, targets, teachers = make_case(16, 10, "partial")
    columns = mixture_table(teacher_mixture(teachers, W_LONG, W_SHORT, tau))  # [2C + 2, B]
    before = [columns.clone(), logits.clone(), targets.clone()]
    z = logits.requires_grad_()
    fused_loss(z, targets, columns, tau)[0].backward()
    fused_loss(z, targets, columns, tau)[0].backward()  # twice from the same columns: same table
    for now, then in zip([columns, logits.detach(), targets], before, strict=True):
        assert torch.equal(now, then)


@pytest.mark.parametrize("tau", [1.0, 2.0])
def test_without_the_private_kernel_the_numbers_are_the_same(tau, monkeypatch):
    """Without `torch._log_softmax_backward_data` the gradient is written with public operations."""
    logits, targets, teachers = make_case(100, 10, "partial")
    with_kernel = run_fused(logits, targets, teachers, tau)
    monkeypatch.delattr(torch, "_log_softmax_backward_data")
    assert not fused.available()
    without = run_fused(logits, targets, teachers, tau)
    assert torch.equal(without[0], with_kernel[0])  # the forward does not use the kernel
    assert torch.equal(without[1], with_kernel[1])
    torch.testing.assert_close(without[2], with_kernel[2], rtol=1e-6, atol=1e-9)
    torch.testing.assert_close(without[2], run_readable(logits, targets, teachers, tau)[2])


def test_mixture_table_layout():
    """[0 (C rows) | t (C) | plogp | w_ce], one column per sample."""
    *_, teachers = make_case(8, 5, "partial")
    mixture = teacher_mixture(teachers, W_LONG, W_SHORT, 2.0)
    columns = mixture_table(mixture)
    assert columns.shape == (2 * 5 + 2, 8)
    assert torch.equal(columns[:5], torch.zeros(5, 8))
    assert torch.equal(columns[5:10], mixture.target)
    assert torch.equal(columns[10:], torch.cat([mixture.plogp, mixture.w_ce]))
    m = teachers.valid.float()
    torch.testing.assert_close(mixture.w_ce[0], 1 - W_LONG * m[0] - W_SHORT * m[1])


def test_half_precision_logits_get_a_gradient_of_their_own_dtype():
    """Under bf16 autocast the logits are bf16; the loss is computed in fp32 all the same."""
    logits, targets, teachers = make_case(16, 10, "partial")
    loss16, log_q16, grad16 = run_fused(logits.bfloat16(), targets, teachers, 2.0)
    loss, log_q, grad = run_fused(logits.bfloat16().float(), targets, teachers, 2.0)
    assert loss16.dtype == log_q16.dtype == torch.float32 and grad16.dtype == torch.bfloat16
    assert torch.equal(loss16, loss) and torch.equal(log_q16, log_q)
    assert torch.equal(grad16, grad.bfloat16())


@pytest.mark.parametrize("tau", [1.0, 2.0, 3.0])
@pytest.mark.parametrize("batch", [8, 100])
@pytest.mark.parametrize("classes", [5, 10, 100])
def test_written_out_gradient_matches_autograd(tau, batch, classes):
    """`fused_loss` computes its gradient itself (one autograd node, class-major layout); it must
    agree with autograd of the mixture's formula, done in float64, to float32 rounding."""
    g = torch.Generator().manual_seed(batch)
    logits = 3 * torch.randn(batch, classes, generator=g)
    targets = torch.randint(0, classes, (batch,), generator=g)
    valid = torch.rand(2, batch, generator=g) < 0.7
    teachers = Teachers(torch.log_softmax(2 * torch.randn(2, batch, classes, generator=g), dim=2), valid)
    mixture = teacher_mixture(teachers, 0.3, 0.5, tau)

    z1 = logits.clone().requires_grad_()
    loss1, log_q = fused_loss(z1, targets, mixture_table(mixture), tau)
    loss1.backward()

    z2 = logits.double().requires_grad_()  # autograd of: mean_i [w_ce,i CE_i + plogp_i − Σ_c t log q]
    target, plogp, w_ce = (part.double() for part in mixture)
    log_q2 = torch.log_softmax(z2 / tau, dim=1)
    ce = torch.nn.functional.cross_entropy(z2, targets, reduction="none")
    loss2 = (w_ce[0] * ce + plogp[0] - (target.t() * log_q2).sum(1)).mean()
    loss2.backward()

    torch.testing.assert_close(loss1, loss2.float(), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(log_q, log_q2.detach().float(), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(z1.grad, z2.grad.float(), rtol=1e-5, atol=1e-8)
