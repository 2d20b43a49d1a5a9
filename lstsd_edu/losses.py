"""The LSTSD loss, and the per-sample divergences used to look inside training.

For a batch of B samples with student logits z_i, labels y_i, temperature τ and weights
w_long, w_short (w_ce = 1 − w_long − w_short ≥ 0), the loss is

    L = 1/B Σ_i [ w_ce,i · CE(z_i, y_i)
                  + τ² · w_long  · m_long,i  · KL(p_long,i  ‖ softmax(z_i / τ))
                  + τ² · w_short · m_short,i · KL(p_short,i ‖ softmax(z_i / τ)) ]

    w_ce,i = 1 − w_long · m_long,i − w_short · m_short,i

where m_·,i ∈ {0, 1} says whether sample i has that teacher yet. A missing teacher hands its
weight back to cross-entropy, so until records exist the loss *is* plain CE, and with
w_long = w_short = 0 it is plain CE exactly, bit for bit. The τ² keeps the gradient of the soft
terms on the same scale as CE's when τ changes (Hinton et al., 2015). Dividing the sum over all
B samples by B is KL's `batchmean` reduction.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from .buffer import Teachers


def per_sample_ce(logits: torch.Tensor, targets: torch.Tensor,
                  label_smoothing: float = 0.0) -> torch.Tensor:
    """CE(z_i, y_i) for each sample: [B, C], [B] -> [B]."""
    return F.cross_entropy(logits.float(), targets, reduction="none", label_smoothing=label_smoothing)


def per_sample_kl(teacher_probs: torch.Tensor, student_logits: torch.Tensor,
                  temperature: float = 1.0) -> torch.Tensor:
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
    """What the loss needs from a sample's teachers: fixed for a whole epoch, so computable ahead."""

    target: torch.Tensor  # [B, C]  t_i = Σ_k w_k m_k,i p_k,i
    plogp: torch.Tensor  # [B]     Σ_k w_k m_k,i Σ_c p_k,i,c log p_k,i,c
    w_ce: torch.Tensor  # [B]     1 − Σ_k w_k m_k,i


@torch.no_grad()  # teachers are constants
def teacher_mixture(teachers: Teachers, w_long: float, w_short: float) -> Mixture:
    """Fold both teachers into one mixture (see `lstsd_loss`)."""
    wm = torch.tensor([[w_long], [w_short]], device=teachers.valid.device) * teachers.valid  # [2, B]
    p = teachers.probs  # [2, B, C]
    return Mixture(target=(wm[:, :, None] * p).sum(0),
                   plogp=(wm * (p * teachers.log_probs).sum(2)).sum(0),  # log-probs are finite: 0·log 0 = 0
                   w_ce=1.0 - wm.sum(0))  # a missing teacher's weight goes back to CE


def mixture_loss(logits: torch.Tensor, targets: torch.Tensor, mixture: Mixture,
                 temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The loss given the teachers' mixture. Returns (loss, log_q), log_q = log softmax(z / τ).

    With p = softmax(z), q = softmax(z / τ), per sample

        ℓ_i = w_ce,i · CE(z_i, y_i) + τ² (plogp_i − Σ_c t_i,c log q_i,c),     L = mean_i ℓ_i

    since τ² Σ_k w_k m_k,i KL(p_k,i ‖ q_i) = τ² (Σ_k w_k m_k,i Σ_c p log p − Σ_c t_i,c log q_i,c).
    `_MixtureLoss` computes L and its gradient in one autograd node (see there for why).
    """
    return _MixtureLoss.apply(logits, targets, *mixture, temperature)


class _MixtureLoss(torch.autograd.Function):
    """`mixture_loss` as one autograd node, its gradient written out:

        ∂L/∂z_i = [ w_ce,i (p_i − onehot(y_i)) + τ (s_i q_i − t_i) ] / B,      s_i = Σ_c t_i,c

    Left to autograd, the loss would record a dozen small operations per step, each with its own
    backward node, and on a small model the per-operation overhead, not the arithmetic, is what
    LSTSD costs. So the forward computes the loss and, while log p and log q are at hand, the
    gradient; the backward only scales it. Both parts go through `torch._log_softmax_backward_data`,
    the kernel autograd itself runs for `log_softmax` (at output log p it maps g to g − p Σ_c g_c):

        CE part:    g = −w_ce,i onehot(y_i) / B  at log p   →  w_ce,i (p_i − onehot(y_i)) / B
        soft part:  g = −τ² t_i / B  at log q, then ÷ τ     →  τ (s_i q_i − t_i) / B

    in the order and with the roundings autograd would use, so a step's numbers are those of
    autograd applied to the formula, bit for bit (tests check this, and that zero weights give
    plain CE's training exactly).
    """

    @staticmethod
    def forward(ctx, logits, targets, target, plogp, w_ce, temperature):
        z = logits.float()  # [B, C]; fp32 also under bf16 autocast (no graph is recorded in here)
        log_p = z.log_softmax(1)  # [B, C]
        ce = F.nll_loss(log_p, targets, reduction="none")  # [B]  CE(z_i, y_i)
        log_q = log_p if temperature == 1.0 else (z / temperature).log_softmax(1)  # [B, C]
        soft = temperature**2 * (plogp - torch.linalg.vecdot(target, log_q))  # [B]
        loss = torch.addcmul(soft, w_ce, ce).mean()  # mean of w_ce,i · CE_i + soft_i
        if ctx.needs_input_grad[0]:
            scale = 1.0 / len(ce)  # ∂L/∂ℓ_i = 1/B
            grad_log_p = torch.zeros_like(log_p).scatter_(1, targets[:, None], (w_ce * -scale)[:, None])
            # −τ²/B rounded as autograd rounds it: 1/B in fp32 first, then × τ² in fp32
            grad_log_q = target * float(np.float32(-scale) * np.float32(temperature**2))  # [B, C]
            if temperature == 1.0:  # log q is log p: one backward for both parts
                grad = torch._log_softmax_backward_data(grad_log_p + grad_log_q, log_p, 1, log_p.dtype)
            else:
                grad = (torch._log_softmax_backward_data(grad_log_p, log_p, 1, log_p.dtype)
                        + torch._log_softmax_backward_data(grad_log_q, log_q, 1, log_q.dtype) / temperature)
            ctx.save_for_backward(grad if grad.dtype == logits.dtype else grad.to(logits.dtype))
        ctx.mark_non_differentiable(log_q)
        return loss, log_q

    @staticmethod
    def backward(ctx, grad_loss, _grad_log_q):
        (grad,) = ctx.saved_tensors
        return grad * grad_loss, None, None, None, None, None


def lstsd_loss(logits: torch.Tensor, targets: torch.Tensor, teachers: Teachers, w_long: float,
               w_short: float, temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The loss in the module docstring. Returns (loss, log_q), log_q = log softmax(z / τ) [B, C].

    Both KL terms share log_q, and KL(p ‖ q) = Σ p log p − Σ p log q, so the two teachers fold
    into one mixture t_i = Σ_k w_k m_k,i p_k,i (`teacher_mixture`): one pass over [B, C] instead
    of two. The mixture depends only on the teachers, which are fixed during an epoch, so
    `SampleDistillation` computes it for all samples once per epoch. log_q is returned because
    it is exactly what the buffer records for this epoch. `per_sample_kl` is the term-by-term
    version the tests compare against.
    """
    return mixture_loss(logits, targets, teacher_mixture(teachers, w_long, w_short), temperature)
