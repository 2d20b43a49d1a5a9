"""The readable LSTSD loss against the formula written out by hand, term by term."""

import math

import pytest
import torch

from lstsd_edu.buffer import Teachers
from lstsd_edu.losses import kd_loss, lstsd_loss, per_sample_ce, per_sample_kl, plain_ce_loss


def hand_kl(p: list[float], z: list[float], tau: float) -> float:
    """KL(p ‖ softmax(z / τ)) = Σ_c p_c (log p_c − log q_c), in plain Python."""
    scaled = [v / tau for v in z]
    log_norm = math.log(sum(math.exp(v) for v in scaled))
    return sum(pc * (math.log(pc) - (v - log_norm)) for pc, v in zip(p, scaled, strict=True) if pc > 0)


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


def test_per_sample_ce_matches_hand_formula():
    logits, targets, _, _ = make_case([True] * 3, [True] * 3)
    expected = [hand_ce(logits[i].tolist(), int(targets[i])) for i in range(3)]
    torch.testing.assert_close(per_sample_ce(logits, targets), torch.tensor(expected))


def test_kl_of_a_distribution_with_itself_is_zero():
    z = torch.randn(5, 7, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(per_sample_kl(z.softmax(1), z), torch.zeros(5), atol=1e-6, rtol=0)


def test_kd_loss_is_tau_squared_batchmean_kl():
    logits, _, teacher_logits, _ = make_case([True] * 3, [True] * 3)
    p = teacher_logits[0].softmax(1)
    expected = 2.0**2 * sum(hand_kl(p[i].tolist(), logits[i].tolist(), 2.0) for i in range(3)) / 3
    torch.testing.assert_close(kd_loss(logits, p, 2.0), torch.tensor(expected))


def test_divergences_keep_float64_and_compute_half_precision_in_float32():
    logits, targets, teacher_logits, _ = make_case([True] * 3, [True] * 3)
    p = teacher_logits[0].softmax(1)
    assert per_sample_ce(logits.double(), targets).dtype == torch.float64
    assert per_sample_kl(p.double(), logits.double(), 2.0).dtype == torch.float64
    assert per_sample_ce(logits.bfloat16(), targets).dtype == torch.float32
    assert per_sample_kl(p, logits.bfloat16(), 2.0).dtype == torch.float32


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
    assert not log_q.requires_grad


def test_top_k_teacher_with_zero_probabilities_matches_hand_formula():
    """Classes a top-k record did not keep have p = 0 (log p = −6e4 in the buffer) and add nothing."""
    logits, targets, teacher_logits, _ = make_case([True] * 3, [True] * 3)
    log_p = teacher_logits.log_softmax(2)
    log_p[:, :, 1:3] = -6.0e4  # two classes dropped, the other two renormalised
    log_p = log_p.log_softmax(2)
    teachers = Teachers(log_p, torch.ones(2, 3, dtype=torch.bool))
    p = teachers.probs
    assert (p[:, :, 1:3] == 0).all()
    tau = 2.0
    total = sum(
        0.2 * hand_ce(logits[i].tolist(), int(targets[i]))
        + tau**2 * 0.3 * hand_kl(p[0, i].tolist(), logits[i].tolist(), tau)
        + tau**2 * 0.5 * hand_kl(p[1, i].tolist(), logits[i].tolist(), tau)
        for i in range(3)
    )
    loss, _ = lstsd_loss(logits, targets, teachers, 0.3, 0.5, tau)
    torch.testing.assert_close(loss, torch.tensor(total / 3))


def test_without_teachers_the_loss_is_exactly_cross_entropy():
    logits, targets, teacher_logits, _ = make_case([False] * 3, [False] * 3)
    none = torch.zeros(2, 3, dtype=torch.bool)
    loss, _ = lstsd_loss(logits, targets, Teachers(teacher_logits.log_softmax(2), none), 0.4, 0.4, 2.0)
    assert torch.equal(loss, per_sample_ce(logits, targets).mean())  # the `ce` method's loss


def test_with_zero_weights_the_loss_is_exactly_cross_entropy():
    logits, targets, teacher_logits, valid = make_case([True] * 3, [True] * 3)
    teachers = Teachers(teacher_logits.log_softmax(2), valid)
    loss, log_q = lstsd_loss(logits, targets, teachers, 0.0, 0.0, 2.0)
    assert torch.equal(loss, per_sample_ce(logits, targets).mean())  # the `ce` method's loss
    assert torch.equal(log_q, plain_ce_loss(logits, targets, 2.0)[1])


def test_gradient_of_the_soft_terms_matches_autograd_of_the_hand_formula():
    logits, targets, teacher_logits, valid = make_case([True, False, True], [True, True, False])
    tau, w_long, w_short = 2.0, 0.4, 0.3
    teachers = Teachers(torch.log_softmax(teacher_logits / tau, dim=2), valid)
    z1 = logits.clone().requires_grad_()
    lstsd_loss(z1, targets, teachers, w_long, w_short, tau)[0].backward()
    z2 = logits.double().requires_grad_()  # the formula again, in float64, with log q written out
    p = teachers.probs.double()
    log_q = torch.log_softmax(z2 / tau, dim=1)
    m = valid.double()
    per_sample = (1 - w_long * m[0] - w_short * m[1]) * -torch.log_softmax(z2, dim=1)[range(3), targets]
    for k, w in ((0, w_long), (1, w_short)):
        per_sample = per_sample + tau**2 * w * m[k] * (p[k] * (p[k].log() - log_q)).sum(1)
    per_sample.mean().backward()
    torch.testing.assert_close(z1.grad, z2.grad.float())
