"""The LSTSD loss, and the per-sample divergences used to look inside training.

Notation: z_i the student's logits for sample i, y_i its label, τ the temperature,
q_i = softmax(z_i / τ) the student at τ, s_i = softmax(z_i) the student at 1, and p_long,i,
p_short,i the two teachers (sample i's own past records of q, see `buffer`). For a batch of B
samples and weights w_long, w_short (w_long + w_short ≤ 1) the loss is

    L = 1/B Σ_i [ w_ce,i · CE(z_i, y_i)
                  + τ² · w_long  · m_long,i  · KL(p_long,i  ‖ q_i)
                  + τ² · w_short · m_short,i · KL(p_short,i ‖ q_i) ]

    w_ce,i = 1 − w_long · m_long,i − w_short · m_short,i

where m_·,i ∈ {0, 1} says whether sample i has that teacher yet, CE(z_i, y_i) = −log s_i,y_i and
KL(p ‖ q) = Σ_c p_c (log p_c − log q_c). A missing teacher hands its weight back to
cross-entropy, so until records exist the loss *is* plain CE, and with w_long = w_short = 0 it is
plain CE; `lstsd_loss` then computes it with CE's own code, bit for bit the `ce` method's loss.
The τ² keeps the gradient of the soft terms on the same scale as CE's when τ changes (Hinton et
al., 2015). Dividing the sum over all B samples by B is KL's `batchmean` reduction.

`lstsd_loss` below is this equation, term by term: the reference. Training runs the same loss
fused into one pass (`fused.fused_loss`), which the tests hold equal to it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .buffer import Teachers


def _fp32_or_wider(logits: torch.Tensor) -> torch.Tensor:
    """fp16 / bf16 logits (mixed precision) in fp32; fp32 and fp64 as they are."""
    return logits.to(torch.promote_types(logits.dtype, torch.float32))


def per_sample_ce(logits: torch.Tensor, targets: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """CE(z_i, y_i) = −log s_i,y_i for each sample: [B, C], [B] -> [B]."""
    return F.cross_entropy(_fp32_or_wider(logits), targets, reduction="none", label_smoothing=label_smoothing)


def per_sample_kl(teacher_probs: torch.Tensor, student_logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """KL(p_i ‖ q_i) = Σ_c p_i,c (log p_i,c − log q_i,c), q_i = softmax(z_i / τ), per sample: -> [B].

    Classes with p_c = 0 contribute 0 (PyTorch's `kl_div` uses 0·log 0 = 0), which is what a
    top-k teacher needs.
    """
    log_q = F.log_softmax(_fp32_or_wider(student_logits) / temperature, dim=1)  # [B, C]
    return F.kl_div(log_q, teacher_probs, reduction="none").sum(dim=1)  # [B]


def soft_target_ce(target_probs: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """−Σ_c t_c log s_c per sample, for methods whose target t mixes label and teacher: -> [B]."""
    return -(target_probs * F.log_softmax(_fp32_or_wider(logits), dim=1)).sum(dim=1)  # [B]


def kd_loss(student_logits: torch.Tensor, teacher_probs: torch.Tensor, temperature: float) -> torch.Tensor:
    """τ² · KL(p ‖ q) with `batchmean` reduction (the classic distillation term)."""
    log_q = F.log_softmax(_fp32_or_wider(student_logits) / temperature, dim=1)  # [B, C]
    return temperature**2 * F.kl_div(log_q, teacher_probs, reduction="batchmean")


def plain_ce_loss(logits: torch.Tensor, targets: torch.Tensor, temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The loss while nobody teaches: CE computed as `F.cross_entropy` computes it (bit for bit the
    `ce` method's), and log_q = log softmax(z / τ) [B, C], the record the buffer keeps all the same."""
    return per_sample_ce(logits, targets).mean(), (_fp32_or_wider(logits.detach()) / temperature).log_softmax(1)


def lstsd_loss(
    logits: torch.Tensor, targets: torch.Tensor, teachers: Teachers, w_long: float, w_short: float, temperature: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """The loss in the module docstring, for logits [B, C], labels [B] and the batch's teachers.

    Returns (loss, log_q), log_q = log softmax(z / τ) detached [B, C]: the student at τ, exactly
    what the buffer records for this epoch (a teacher for later epochs).
    """
    if (w_long == 0 and w_short == 0) or not teachers.valid.any():
        return plain_ce_loss(logits, targets, temperature)  # nobody teaches: CE's own code
    p_long, p_short = teachers.probs  # [B, C] each
    m_long, m_short = teachers.valid.to(p_long.dtype)  # [B] each, 1 where the sample has that teacher
    # w_ce,i = 1 − w_long · m_long,i − w_short · m_short,i
    w_ce = 1 - w_long * m_long - w_short * m_short  # [B]
    # ℓ_i = w_ce,i · CE(z_i, y_i)
    #       + τ² · w_long  · m_long,i  · KL(p_long,i  ‖ q_i)
    #       + τ² · w_short · m_short,i · KL(p_short,i ‖ q_i)
    per_sample = (
        w_ce * per_sample_ce(logits, targets)
        + temperature**2 * w_long * m_long * per_sample_kl(p_long, logits, temperature)
        + temperature**2 * w_short * m_short * per_sample_kl(p_short, logits, temperature)
    )  # [B]
    # L = 1/B Σ_i ℓ_i  (batchmean)
    loss = per_sample.sum() / len(targets)
    log_q = F.log_softmax(_fp32_or_wider(logits.detach()) / temperature, dim=1)  # [B, C]
    return loss, log_q
