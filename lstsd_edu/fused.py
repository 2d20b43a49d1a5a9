"""The LSTSD loss, fused: the same numbers as `losses.lstsd_loss`, in one pass and one autograd node.

`losses.lstsd_loss` is the reference: three per-sample terms, each its own small computation.
This module computes the same loss the way training runs it. The notation is the reference's:
p_k the teachers (k = long, short), q = softmax(z / τ) the student at τ, s = softmax(z) the
student at 1, m_k,i ∈ {0, 1} whether sample i has teacher k, w_ce,i = 1 − Σ_k w_k m_k,i.

**One mixture of both teachers.** Since KL(p ‖ q) = Σ_c p_c log p_c − Σ_c p_c log q_c, per sample

    ℓ_i = w_ce,i · CE(z_i, y_i) + τ² Σ_k w_k m_k,i KL(p_k,i ‖ q_i)
        = plogp_i − w_ce,i log s_i,y_i − Σ_c t_i,c log q_i,c

    t_i     = τ² Σ_k w_k m_k,i p_k,i                      (the teachers' mixture, [C])
    plogp_i = τ² Σ_k w_k m_k,i Σ_c p_k,i,c log p_k,i,c     (a constant: no gradient)

and L = 1/B Σ_i ℓ_i. t, plogp and w_ce depend only on the teachers, which are fixed for a whole
epoch, so training computes them for all N samples once per epoch (`teacher_mixture`,
`mixture_table`) and a step gathers its B columns. What is left per step is one soft-target
cross-entropy at two temperatures, 1 and τ, with targets a_i = [w_ce,i onehot(y_i) | t_i]
(2C numbers per sample): `fused_loss`.

**One autograd node, its gradient written out** (`_FusedLoss`). Stack the logits at both
temperatures, u_i = [z_i | z_i / τ], so that ℓ_i = plogp_i − Σ a_i ⊙ [log s_i | log q_i]; then

    ∂L/∂z_i = [ (σ_i s_i − a_i,1) + (σ'_i q_i − a_i,2) / τ ] / B

with a_i,1, a_i,2 the two halves of a_i and σ_i, σ'_i their sums. Left to autograd the loss would
record a dozen small operations per step, each with its own backward node, and on a small model
that per-operation overhead, not the arithmetic, is what LSTSD costs. So the forward computes the
loss and, while log s and log q are at hand, the gradient; the backward only scales it. The
gradient of log softmax at output log p maps g to g − p Σ_c g_c: `torch._log_softmax_backward_data`
is PyTorch's own kernel for it (the one autograd runs for `log_softmax`). It is a private
function; where it is missing (`available()` is False) the same expression is computed with
public operations, a few more small kernels for the same numbers up to float rounding.

**Classes first.** The work is done on zᵀ [C, B]. With few classes (C = 10) a softmax along the
first axis runs over many samples at once in vector registers, where one along the last axis runs
row by row: about 2 µs instead of 20 µs per call on a CPU.

**Where it is used, and why.** `SampleDistillation` (the `lstsd`, `short` and `long` methods)
trains with this path whenever a teacher has weight; `losses.lstsd_loss` is what the chapters read
and what the tests hold this module to (loss, record and gradient, for several C, τ, masks and
top-k teachers). The reason is cost, measured on a CPU with small C, where the loss is a visible
part of a step: on MNIST-1D (batch 128, C = 10, one thread) a step's loss + backward takes about
85 µs for CE and 150 µs for LSTSD on this path (`benchmarks/cost.py --loss-only`, the README's
Cost section), while `lstsd_loss` computed from the buffer's teachers at every step took about
1.4 times as long as this path (≈ 195 µs against ≈ 140 µs, the two timed in turn in one process).
Over whole epochs of the small cnn1d, LSTSD costs about 3.5% more than CE. The larger the model,
the smaller the loss's share of a step.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import torch

from .buffer import Teachers


def available() -> bool:
    """Whether PyTorch's private log-softmax backward kernel exists (else a public-op version runs)."""
    return hasattr(torch, "_log_softmax_backward_data")


class Mixture(NamedTuple):
    """What the loss needs from a batch's teachers, one column per sample (samples along the last
    axis, the loss's working layout): fixed for a whole epoch, so computable ahead."""

    target: torch.Tensor  # [C, B]  t_i = τ² Σ_k w_k m_k,i p_k,i
    plogp: torch.Tensor  # [1, B]  τ² Σ_k w_k m_k,i Σ_c p_k,i,c log p_k,i,c
    w_ce: torch.Tensor  # [1, B]  1 − Σ_k w_k m_k,i


@torch.no_grad()  # teachers are constants
def teacher_mixture(teachers: Teachers, w_long: float, w_short: float, temperature: float) -> Mixture:
    """Fold both teachers, their weights, their masks and τ² into one mixture (module docstring)."""
    wm = torch.tensor([[w_long], [w_short]], device=teachers.valid.device) * teachers.valid  # [2, B]: w_k m_k,i
    p = teachers.probs  # [2, B, C]
    tau2 = temperature**2
    return Mixture(
        target=((wm[:, :, None] * p).sum(0) * tau2).t().contiguous(),  # [C, B]
        plogp=(wm * (p * teachers.log_probs).sum(2)).sum(0, keepdim=True) * tau2,  # [1, B]; finite logs
        w_ce=1.0 - wm.sum(0, keepdim=True),  # [1, B]: a missing teacher's weight goes back to CE
    )


def mixture_table(mixture: Mixture) -> torch.Tensor:
    """The mixture as `fused_loss` reads it: [0 (C rows) | t (C) | plogp | w_ce] -> [2C + 2, B].

    The first C rows are the CE half of the targets a_i, w_ce,i · onehot(y_i), all zeros until
    `fused_loss` has the labels; a table holds one column per sample, so a step gathers its
    columns with one `index_select`.
    """
    return torch.cat([torch.zeros_like(mixture.target), *mixture])


def fused_loss(
    logits: torch.Tensor, targets: torch.Tensor, columns: torch.Tensor, temperature: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """The LSTSD loss from a batch's columns of `mixture_table` [2C + 2, B], which it leaves as they
    are. Returns (loss, log_q), log_q = log softmax(z / τ) detached [B, C], what the buffer records.

    Equal to `losses.lstsd_loss` up to float rounding; while nobody teaches, call
    `losses.plain_ce_loss` instead, which is CE bit for bit.
    """
    weights, plogp, w_ce = columns.split([len(columns) - 2, 1, 1])  # [2C, B], [1, B], [1, B]
    # a_i = [w_ce,i onehot(y_i) | t_i]: w_ce,i at row y_i. Out of place, into a new tensor: about
    # 1 µs more per step than writing into `columns`, which may be the caller's table
    targets_a = weights.scatter(0, targets[None], w_ce)  # [2C, B]
    return _FusedLoss.apply(logits, targets_a, plogp, temperature)


@functools.cache
def _temperatures(temperature: float, device: torch.device) -> torch.Tensor:
    """[1, 1/τ] as a [2, 1, 1] tensor: zᵀ times it is [z | z / τ], classes first."""
    return torch.tensor([1.0, 1.0 / temperature], device=device).view(2, 1, 1)


def _log_softmax_backward(grad: torch.Tensor, log_p: torch.Tensor, dim: int) -> torch.Tensor:
    """The gradient through log_p = log softmax(x) along `dim`: grad − p Σ_dim grad."""
    if available():
        return torch._log_softmax_backward_data(grad, log_p, dim, log_p.dtype)
    return grad - log_p.exp() * grad.sum(dim, keepdim=True)


class _FusedLoss(torch.autograd.Function):
    """`fused_loss` as one autograd node, its gradient written out (module docstring)."""

    @staticmethod
    def forward(ctx, logits, targets_a, plogp, temperature):
        z = logits.float().t().contiguous()  # [C, B]; fp32 also under bf16 autocast (no graph in here)
        classes, batch = z.shape
        log_sq = (z * _temperatures(temperature, z.device)).log_softmax(1)  # [2, C, B]: log s, log q
        # L = (Σ_i plogp_i − Σ a ⊙ [log s | log q]) / B
        loss = (plogp.sum() - torch.vdot(targets_a.view(-1), log_sq.view(-1))) * (1.0 / batch)
        if ctx.needs_input_grad[0]:
            g = (targets_a * (-1.0 / batch)).view(2, classes, batch)  # ∂L/∂log s, ∂L/∂log q
            if temperature == 1.0:  # log q is log s: one backward for both halves
                grad = _log_softmax_backward(g[0] + g[1], log_sq[0], 0)  # [C, B]
            else:
                g_s, g_q = _log_softmax_backward(g, log_sq, 1).unbind(0)  # [C, B] each
                grad = torch.add(g_s, g_q, alpha=1.0 / temperature)  # ∂(z / τ)/∂z = 1 / τ
            ctx.save_for_backward(grad.t().contiguous().to(logits.dtype))  # [B, C], as autograd's would be
        log_q = log_sq[1].t()  # [B, C], a view
        ctx.mark_non_differentiable(log_q)
        return loss, log_q

    @staticmethod
    def backward(ctx, grad_loss, _grad_log_q):
        (grad,) = ctx.saved_tensors
        return grad * grad_loss, None, None, None
