"""The LSTSD loss against the formula written out by hand, term by term."""

import math

import pytest
import torch

from lstsd_edu.buffer import Teachers
from lstsd_edu.losses import loss_columns, lstsd_loss, mixture_loss, per_sample_ce, per_sample_kl, teacher_mixture


def hand_kl(p: list[float], z: list[float], tau: float) -> float:
    """KL(p ‖ softmax(z / τ)) = Σ_c p_c (log p_c − log q_c), in plain Python."""
    scaled = [v / tau for v in z]
    log_norm = math.log(sum(math.exp(v) for v in scaled))
    return sum(pc * (math.log(pc) - (v - log_norm)) for pc, v in zip(p, scaled) if pc > 0)


def hand_ce(z: list[float], y: int) -> float:
    return -(z[y] - math.log(sum(math.exp(v) for v in z)))


def make_case(valid_long, valid_short):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 4, generator=g)
    targets = torch.tensor([0, 2, 3])
    teacher_logits = torch.randn(2, 3, 4, generator=g)
    return logits, targets, teacher_logits, torch.tensor([valid_long, valid_short])


@pytest.mark.parametrize("tau", [1.0, 2.0, 4.0])
def test_per_sample_kl_matches_hand_formula(tau):
    logits, _, teacher_logits, _ = make_case([True] * 3, [True] * 3)
    p = teacher_logits[0].softmax(1)
    expected = [hand_kl(p[i].tolist(), logits[i].tolist(), tau) for i in range(3)]
    torch.testing.assert_close(per_sample_kl(p, logits, tau), torch.tensor(expected))


def test_kl_of_a_distribution_with_itself_is_zero():
    z = torch.randn(5, 7)
    torch.testing.assert_close(per_sample_kl(z.softmax(1), z), torch.zeros(5), atol=1e-6, rtol=0)


@pytest.mark.parametrize("tau", [1.0, 3.0])
@pytest.mark.parametrize(
    "valid_long, valid_short",
    [
        ([True, True, True], [True, True, True]),
        ([False, True, False], [True, False, False]),  # per-sample fallback to CE
        ([False, False, False], [False, False, False]),  # no teacher yet: plain CE
    ],
)
def test_lstsd_loss_matches_hand_formula(tau, valid_long, valid_short):
    logits, targets, teacher_logits, valid = make_case(valid_long, valid_short)
    w_long, w_short = 0.3, 0.5
    # teachers at temperature τ, as the buffer stores them: log softmax(z_teacher / τ)
    teachers = Teachers(torch.log_softmax(teacher_logits / tau, dim=2), valid)
    p = teachers.probs
    total = 0.0
    for i in range(3):
        m_long, m_short = float(valid[0, i]), float(valid[1, i])
        w_ce = 1 - w_long * m_long - w_short * m_short
        term = w_ce * hand_ce(logits[i].tolist(), int(targets[i]))
        if m_long:
            term += tau**2 * w_long * hand_kl(p[0, i].tolist(), logits[i].tolist(), tau)
        if m_short:
            term += tau**2 * w_short * hand_kl(p[1, i].tolist(), logits[i].tolist(), tau)
        total += term
    loss, log_q = lstsd_loss(logits, targets, teachers, w_long, w_short, tau)
    torch.testing.assert_close(loss, torch.tensor(total / 3))  # batchmean: divide by B
    torch.testing.assert_close(log_q, torch.log_softmax(logits / tau, dim=1))


def test_without_teachers_the_loss_is_exactly_cross_entropy():
    logits, targets, teacher_logits, _ = make_case([False] * 3, [False] * 3)
    none = torch.zeros(2, 3, dtype=torch.bool)
    loss, _ = lstsd_loss(logits, targets, Teachers(teacher_logits.log_softmax(2), none), 0.4, 0.4, 2.0)
    assert torch.equal(loss, per_sample_ce(logits, targets).mean())


def test_gradient_of_the_soft_terms_matches_autograd_of_the_hand_formula():
    logits, targets, teacher_logits, valid = make_case([True, False, True], [True, True, False])
    tau, w_long, w_short = 2.0, 0.4, 0.3
    teachers = Teachers(torch.log_softmax(teacher_logits / tau, dim=2), valid)
    z1 = logits.clone().requires_grad_()
    lstsd_loss(z1, targets, teachers, w_long, w_short, tau)[0].backward()
    z2 = logits.clone().requires_grad_()
    m = valid.float()
    reference = (
        (1 - w_long * m[0] - w_short * m[1]) * per_sample_ce(z2, targets)
        + tau**2
        * (
            w_long * m[0] * per_sample_kl(teachers.long, z2, tau)
            + w_short * m[1] * per_sample_kl(teachers.short, z2, tau)
        )
    ).mean()
    reference.backward()
    torch.testing.assert_close(z1.grad, z2.grad)


@pytest.mark.parametrize("tau", [1.0, 2.0, 3.0])
@pytest.mark.parametrize("batch", [8, 100])
@pytest.mark.parametrize("classes", [5, 10, 100])
def test_written_out_gradient_matches_autograd(tau, batch, classes):
    """`mixture_loss` computes its gradient itself (one autograd node, class-major layout); it must
    agree with autograd of the formula, done in float64, to float32 rounding."""
    g = torch.Generator().manual_seed(batch)
    logits = 3 * torch.randn(batch, classes, generator=g)
    targets = torch.randint(0, classes, (batch,), generator=g)
    valid = torch.rand(2, batch, generator=g) < 0.7
    teachers = Teachers(torch.log_softmax(2 * torch.randn(2, batch, classes, generator=g), dim=2), valid)
    mixture = teacher_mixture(teachers, 0.3, 0.5, tau)

    z1 = logits.clone().requires_grad_()
    loss1, log_q = mixture_loss(z1, targets, loss_columns(mixture), tau)
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
