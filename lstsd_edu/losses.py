"""The LSTSD loss, and the per-sample divergences used to look inside training.

For a batch of B samples with student logits z_i, labels y_i, temperature τ and weights
w_long, w_short (w_ce = 1 − w_long − w_short ≥ 0), the loss is

    L = 1/B Σ_i [ w_ce,i · CE(z_i, y_i)
                  + τ² · w_long  · m_long,i  · KL(p_long,i  ‖ softmax(z_i / τ))
                  + τ² · w_short · m_short,i · KL(p_short,i ‖ softmax(z_i / τ)) ]

    w_ce,i = 1 − w_long · m_long,i − w_short · m_short,i

where m_·,i ∈ {0, 1} says whether sample i has that teacher yet. A missing teacher hands its
weight back to cross-entropy, so until records exist the loss *is* plain CE, and with
w_long = w_short = 0 it is plain CE; `lstsd_loss` then computes it as `F.cross_entropy` does,
bit for bit (and `methods.SampleDistillation` trains exactly as CE does). The τ² keeps the
gradient of the soft terms on the same scale as CE's when τ changes (Hinton et al., 2015).
Dividing the sum over all B samples by B is KL's `batchmean` reduction.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import torch
import torch.nn.functional as F

from .buffer import Teachers


def per_sample_ce(logits: torch.Tensor, targets: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """CE(z_i, y_i) for each sample: [B, C], [B] -> [B]."""
    return F.cross_entropy(logits.float(), targets, reduction="none", label_smoothing=label_smoothing)


def per_sample_kl(teacher_probs: torch.Tensor, student_logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """KL(p_teacher,i ‖ softmax(z_i / τ)) = Σ_c p_c (log p_c − log q_c), per sample: -> [B].

    Classes with p_c = 0 contribute 0 (PyTorch's `kl_div` uses 0·log 0 = 0), which is what a
    top-k teacher needs.
    """
    log_q = F.log_softmax(student_logits.float() / temperature, dim=1)  # [B, C]
    return F.kl_div(log_q, teacher_probs, reduction="none").sum(dim=1)  # [B]


def soft_target_ce(target_probs: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """−Σ_c t_c log softmax(z)_c per sample, for methods whose target mixes label and teacher."""
    return -(target_probs * F.log_softmax(logits.float(), dim=1)).sum(dim=1)  # [B]


def kd_loss(student_logits: torch.Tensor, teacher_probs: torch.Tensor, temperature: float) -> torch.Tensor:
    """τ² · KL(p_teacher ‖ softmax(z / τ)) with `batchmean` reduction (classic distillation term)."""
    log_q = F.log_softmax(student_logits.float() / temperature, dim=1)
    return temperature**2 * F.kl_div(log_q, teacher_probs, reduction="batchmean")


class Mixture(NamedTuple):
    """What the loss needs from a batch's teachers, one column per sample (samples along the last
    axis, the loss's working layout): fixed for a whole epoch, so computable ahead."""

    target: torch.Tensor  # [C, B]  t_i = τ² Σ_k w_k m_k,i p_k,i
    plogp: torch.Tensor  # [1, B]  τ² Σ_k w_k m_k,i Σ_c p_k,i,c log p_k,i,c
    w_ce: torch.Tensor  # [1, B]  1 − Σ_k w_k m_k,i


@torch.no_grad()  # teachers are constants
def teacher_mixture(teachers: Teachers, w_long: float, w_short: float, temperature: float) -> Mixture:
    """Fold both teachers, their weights and τ² into one mixture (see `lstsd_loss`)."""
    wm = torch.tensor([[w_long], [w_short]], device=teachers.valid.device) * teachers.valid  # [2, B]
    p = teachers.probs  # [2, B, C]
    tau2 = temperature**2
    return Mixture(
        target=((wm[:, :, None] * p).sum(0) * tau2).t().contiguous(),
        plogp=(wm * (p * teachers.log_probs).sum(2)).sum(0, keepdim=True) * tau2,  # finite logs
        w_ce=1.0 - wm.sum(0, keepdim=True),
    )  # a missing teacher's weight goes back to CE


def loss_columns(mixture: Mixture) -> torch.Tensor:
    """The mixture as `mixture_loss` reads it: [0 (C rows) | t (C) | plogp | w_ce] -> [2C + 2, B].

    The first C rows are room for w_ce,i · onehot(y_i), filled in once the labels are at hand.
    """
    return torch.cat([torch.zeros_like(mixture.target), *mixture])


def mixture_loss(
    logits: torch.Tensor, targets: torch.Tensor, columns: torch.Tensor, temperature: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """The loss from the teachers' mixture, `columns` = `loss_columns(mixture)` [2C + 2, B], which
    this call uses as scratch space. Returns (loss, log_q), log_q = log softmax(z / τ) [B, C].

    With the student's s = softmax(z) and q = softmax(z / τ), and teachers p_k, per sample

        ℓ_i = w_ce,i · CE(z_i, y_i) + τ² Σ_k w_k m_k,i KL(p_k,i ‖ q_i)
            = plogp_i − Σ_c w_ce,i onehot(y_i)_c log s_i,c − Σ_c t_i,c log q_i,c

    since KL(p ‖ q) = Σ p log p − Σ p log q. That is one soft-target cross-entropy at two
    temperatures, 1 and τ, with targets a_i = [w_ce,i onehot(y_i) | t_i] (2C numbers per sample),
    which is how `_MixtureLoss` computes it. L = mean_i ℓ_i.
    """
    weights, plogp, w_ce = columns.split([len(columns) - 2, 1, 1])  # [2C, B], [1, B], [1, B]
    weights.scatter_(0, targets[None], w_ce)  # w_ce,i at row y_i: the CE term as a soft target
    return _MixtureLoss.apply(logits, weights, plogp, temperature)


@functools.cache
def _temperatures(temperature: float, device: torch.device) -> torch.Tensor:
    """[1, 1/τ] as a [2, 1, 1] tensor: zᵀ times it is [z | z / τ], classes first."""
    return torch.tensor([1.0, 1.0 / temperature], device=device).view(2, 1, 1)


class _MixtureLoss(torch.autograd.Function):
    """`mixture_loss` as one autograd node, its gradient written out. Stack the student's logits at
    the two temperatures, u = [z | z / τ] (2C per sample, `_temperatures`); then
    ℓ_i = plogp_i − Σ a_i log softmax(u_i) (the softmax taken over each half), and

        ∂L/∂z_i = [ (σ_i softmax(z_i) − a_i,1) + (σ'_i softmax(z_i / τ) − a_i,2) / τ ] / B

    with a_i,1, a_i,2 the two halves of a_i and σ_i, σ'_i their sums. Left to autograd the loss
    would record a dozen small operations per step, each with its own backward node, and on a small
    model the per-operation overhead, not the arithmetic, is what LSTSD costs. So the forward
    computes the loss and, while the log-softmaxes are at hand, the gradient, with
    `torch._log_softmax_backward_data` (the kernel autograd itself runs for `log_softmax`: at output
    log p it maps g to g − p Σ_c g_c) applied to g = −a_i / B; the backward only scales it.

    Layout: the work is done classes first, zᵀ is [C, B]. With few classes (C = 10) a softmax along
    the first axis runs over many samples at once in vector registers, where one along the last axis
    runs row by row: about 2 µs instead of 20 µs per call on a CPU. The numbers are autograd's for
    the formula up to float rounding (tests check both, and the per-term formula by hand).
    """

    @staticmethod
    def forward(ctx, logits, weights, plogp, temperature):
        z = logits.float().t().contiguous()  # [C, B]; fp32 also under bf16 autocast (no graph in here)
        classes, batch = z.shape
        log_pq = (z * _temperatures(temperature, z.device)).log_softmax(1)  # [2, C, B]: log p, log q
        # L = (Σ_i plogp_i − Σ a ⊙ [log p | log q]) / B
        loss = (plogp.sum() - torch.vdot(weights.view(-1), log_pq.view(-1))) * (1.0 / batch)
        if ctx.needs_input_grad[0]:
            g = (weights * (-1.0 / batch)).view(2, classes, batch)  # ∂L/∂log p, ∂L/∂log q
            if temperature == 1.0:  # log q is log p: one backward for both halves
                grad = torch._log_softmax_backward_data(g[0] + g[1], log_pq[0], 0, z.dtype)
            else:
                g_p, g_q = torch._log_softmax_backward_data(g, log_pq, 1, z.dtype).unbind(0)  # [C, B] each
                grad = torch.add(g_p, g_q, alpha=1.0 / temperature)  # ∂(z / τ)/∂z = 1 / τ
            ctx.save_for_backward(grad.t().contiguous().to(logits.dtype))  # [B, C], as autograd's would be
        log_q = log_pq[1].t()  # [B, C], a view
        ctx.mark_non_differentiable(log_q)
        return loss, log_q

    @staticmethod
    def backward(ctx, grad_loss, _grad_log_q):
        (grad,) = ctx.saved_tensors
        return grad * grad_loss, None, None, None


def plain_ce_loss(logits: torch.Tensor, targets: torch.Tensor, temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The loss while nobody teaches: CE computed as `F.cross_entropy` computes it (bit for bit the
    `ce` method's), and log_q = log softmax(z / τ) [B, C], the record the buffer keeps all the same."""
    return per_sample_ce(logits, targets).mean(), (logits.detach().float() / temperature).log_softmax(1)


def lstsd_loss(
    logits: torch.Tensor, targets: torch.Tensor, teachers: Teachers, w_long: float, w_short: float, temperature: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """The loss in the module docstring. Returns (loss, log_q), log_q = log softmax(z / τ) [B, C].

    Both KL terms share log_q, and KL(p ‖ q) = Σ p log p − Σ p log q, so the two teachers fold
    into one mixture t_i = τ² Σ_k w_k m_k,i p_k,i (`teacher_mixture`): one pass over [B, C] instead
    of two. The mixture depends only on the teachers, which are fixed during an epoch, so
    `SampleDistillation` computes it for all samples once per epoch. log_q is returned because
    it is exactly what the buffer records for this epoch. Without any teacher weight the loss is
    plain CE, computed as `F.cross_entropy` computes it. `per_sample_kl` is the term-by-term
    version the tests compare against.
    """
    if (w_long == 0 and w_short == 0) or not teachers.valid.any():
        return plain_ce_loss(logits, targets, temperature)
    columns = loss_columns(teacher_mixture(teachers, w_long, w_short, temperature))
    return mixture_loss(logits, targets, columns, temperature)
