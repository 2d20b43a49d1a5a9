"""Training methods: each one turns a batch's logits into a loss, with one interface.

    method.setup(num_samples, num_classes, device)     # allocate per-sample state, if any
    loss = method.loss(logits, (x, y, index), epoch)   # called once per training step
    method.end_epoch(epoch, model)                      # called after each epoch

The trainer knows nothing else about a method, so plain CE, label smoothing, the three
sample-distillation variants (and the peers) are trained by exactly the same loop.

Sample distillation — `short`, `long` and `lstsd` are one class with different weights:

    lstsd:  w_long · long-term teacher  +  w_short · short-term teacher  +  w_ce · CE
    short:  LSTSD without its long-term term:  w_short · short-term teacher + (1 − w_short) · CE
    long:   LSTSD without its short-term term: w_long · long-term teacher + (1 − w_long) · CE

Each ablation removes one teacher and, as for a sample whose teacher does not exist yet, gives its
weight back to CE. (Keeping the *total* distillation weight on one teacher is the other possible
ablation; benchmarks/sweep_mnist1d.md reports what it gives.)
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from .buffer import SnapshotBuffer
from .errors import ConfigError, check_choice, check_range
from .fused import fused_loss, mixture_table, teacher_mixture
from .losses import kd_loss, per_sample_ce, per_sample_kl, plain_ce_loss, soft_target_ce

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # (x, y, index)


class Method:
    """Plain cross-entropy; the base class of every method."""

    name = "ce"
    extra_forward_passes = 0  # forward passes per step beyond the student's own
    buffer: SnapshotBuffer | None = None

    def setup(self, num_samples: int, num_classes: int, device: torch.device) -> None:
        """Allocate per-sample state for a training set of `num_samples` samples."""

    def loss(self, logits: torch.Tensor, batch: Batch, epoch: int) -> torch.Tensor:
        return per_sample_ce(logits, batch[1]).mean()

    def start_epoch(self, epoch: int) -> None:
        """Hook before each training epoch (LSTSD prepares its teachers here)."""

    def end_epoch(self, epoch: int, model: nn.Module) -> None:
        """Hook after each training epoch (used by methods that keep model snapshots)."""

    @property
    def state_bytes(self) -> int:
        """Bytes of per-sample state the method keeps (its buffer, if any)."""
        return self.buffer.nbytes if self.buffer is not None else 0

    def state_dict(self) -> dict:
        return {"buffer": self.buffer.state_dict()} if self.buffer is not None else {}

    def load_state_dict(self, state: dict) -> None:
        if self.buffer is not None:
            self.buffer.load_state_dict(state["buffer"])

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


CrossEntropy = Method


class LabelSmoothing(Method):
    """CE against (1 − ε)·onehot(y) + ε/C (Szegedy et al., 2016); ε = 0.1 by default."""

    name = "ls"

    def __init__(self, smoothing: float = 0.1) -> None:
        check_range("label_smoothing", smoothing, 0.0, 1.0, high_inclusive=False)
        self.smoothing = smoothing

    def loss(self, logits: torch.Tensor, batch: Batch, epoch: int) -> torch.Tensor:
        return per_sample_ce(logits, batch[1], label_smoothing=self.smoothing).mean()

    def __repr__(self) -> str:
        return f"LabelSmoothing(smoothing={self.smoothing})"


class SampleDistillation(Method):
    """Long short-term sample distillation (see `losses.lstsd_loss` for the equation).

    Each step takes its own log softmax(z / τ) as each sample's record for this epoch: no extra
    forward pass. The teachers of epoch e (records of e − 1 and e − L) are complete before epoch e
    starts and do not change during it, so `start_epoch` folds them into each sample's mixture
    (`losses.teacher_mixture`, `losses.loss_columns`) for all N samples at once, and a step only
    gathers its B columns. Likewise the steps only keep their records, and `end_epoch` writes the
    whole epoch into the buffer in one call. On a small model every small operation per step shows
    in the epoch time (benchmarks/cost.py), so whatever can be done once per epoch is. The table
    costs N·(2C + 2)·4 bytes and the kept records N·C·4 bytes while the epoch runs; above
    `MAX_TABLE_BYTES` for the table (huge N·C, where steps are slow anyway) each step computes its
    own columns and writes its own records.

    While no teacher can have weight (epoch 0, or both weights 0) the loss is plain CE, and it is
    computed by CE's own code: such a run trains exactly as `ce` does, bit for bit.

    `ramp` > 0 grows both weights linearly over the first `ramp` epochs (weight × (e + 1) / ramp).
    """

    MAX_TABLE_BYTES = 512 * 2**20

    def __init__(
        self,
        w_long: float,
        w_short: float,
        lag: int,
        long_mode: str = "sliding",
        temperature: float = 1.0,
        name: str = "lstsd",
        ramp: int = 0,
        storage: str = "dense",
        k: int = 5,
        dtype: torch.dtype = torch.float16,
    ) -> None:
        check_range("long_weight", w_long, 0.0, 1.0)
        check_range("short_weight", w_short, 0.0, 1.0)
        if w_long + w_short > 1.0 + 1e-9:
            raise ConfigError(
                f"long_weight + short_weight must be at most 1; got {w_long} + {w_short} = {w_long + w_short:g}"
            )
        check_range("lag", lag, 1, 1000, integer=True)
        check_choice("long_mode", long_mode, ("sliding", "phase"))
        check_range("temperature", temperature, 0.0, 100.0, low_inclusive=False)
        check_range("ramp", ramp, 0, 100_000, integer=True)
        self.w_long, self.w_short, self.lag, self.long_mode = w_long, w_short, lag, long_mode
        self.ramp = ramp
        self.temperature, self.name, self.storage, self.k, self.dtype = temperature, name, storage, k, dtype

    def setup(self, num_samples: int, num_classes: int, device: torch.device) -> None:
        self.buffer = SnapshotBuffer(
            num_samples, num_classes, self.lag, self.long_mode, device, self.dtype, self.storage, self.k
        )
        self.table: torch.Tensor | None = None
        self.use_table = num_samples * (2 * num_classes + 2) * 4 <= self.MAX_TABLE_BYTES
        self.taken: list[tuple[torch.Tensor, torch.Tensor]] = []  # this epoch's (index, log_q)

    def weights(self, epoch: int) -> tuple[float, float]:
        """(w_long, w_short) in effect at `epoch`, after the ramp."""
        scale = min(1.0, (epoch + 1) / self.ramp) if self.ramp else 1.0
        return scale * self.w_long, scale * self.w_short

    def columns(self, epoch: int, index: torch.Tensor) -> torch.Tensor:
        """The loss's per-sample constants for samples `index` at `epoch`, straight from the buffer."""
        mixture = teacher_mixture(self.buffer.teachers(epoch, index), *self.weights(epoch), self.temperature)
        return mixture_table(mixture)  # [2C + 2, B]

    def teaching(self, epoch: int) -> bool:
        """Whether any teacher can have weight at `epoch`: not before the first records (epoch 0)."""
        return epoch > 0 and any(self.weights(epoch))

    def start_epoch(self, epoch: int) -> None:
        self.taken = []
        if self.use_table and self.teaching(epoch):  # one column per sample, one gather per step
            every = torch.arange(self.buffer.num_samples, device=self.buffer.values.device)
            self.table = torch.cat([self.columns(epoch, chunk) for chunk in every.split(65536)], 1)

    def loss(self, logits: torch.Tensor, batch: Batch, epoch: int) -> torch.Tensor:
        _, y, index = batch
        if not self.teaching(epoch):  # the loss is plain CE: computed as CE computes it, bit for bit
            loss, log_q = plain_ce_loss(logits, y, self.temperature)
        else:
            # read before this step writes its records (per-step path)
            columns = self.table.index_select(1, index) if self.use_table else self.columns(epoch, index)
            loss, log_q = fused_loss(logits, y, columns, self.temperature)
        # the student at τ: a teacher for later epochs
        if self.use_table:
            self.taken.append((index, log_q))  # written by end_epoch, all at once
        else:
            self.buffer.record(epoch, index, log_q)
        return loss

    def end_epoch(self, epoch: int, model: nn.Module) -> None:
        if self.taken:
            index, log_q = (torch.cat(parts) for parts in zip(*self.taken))
            self.buffer.record(epoch, index, log_q)
            self.taken = []

    @property
    def state_bytes(self) -> int:
        table = self.table.numel() * self.table.element_size() if self.table is not None else 0
        return self.buffer.nbytes + table

    def __repr__(self) -> str:
        return (
            f"SampleDistillation(name={self.name!r}, w_long={self.w_long}, w_short={self.w_short}, "
            f"lag={self.lag}, long_mode={self.long_mode!r}, temperature={self.temperature})"
        )


def lstsd(
    w_long: float, w_short: float, lag: int, long_mode: str = "sliding", temperature: float = 1.0, **options
) -> SampleDistillation:
    """Both teachers: the method of the paper."""
    return SampleDistillation(w_long, w_short, lag, long_mode, temperature, "lstsd", **options)


def short_term(weight: float, temperature: float = 1.0, **options) -> SampleDistillation:
    """Only the previous epoch teaches."""
    return SampleDistillation(0.0, weight, 1, "sliding", temperature, "short", **options)


def long_term(
    weight: float, lag: int, long_mode: str = "sliding", temperature: float = 1.0, **options
) -> SampleDistillation:
    """Only the epoch L back (or the previous phase's last epoch) teaches."""
    return SampleDistillation(weight, 0.0, lag, long_mode, temperature, "long", **options)


METHODS = ("ce", "ls", "short", "long", "lstsd", "snapshot", "born_again", "pskd", "te")


def build_method(
    name: str,
    *,
    w_long: float,
    w_short: float,
    lag: int,
    long_mode: str,
    temperature: float,
    ramp: int = 0,
    label_smoothing: float = 0.1,
    **options,
) -> Method:
    """Build a method by name from the LSTSD hyperparameters (ignored by methods that lack them)."""
    check_choice("method", name, METHODS)
    if name in PEERS:  # the peers (end of this module) bring their own, paper-based defaults
        return PEERS[name]()
    if name == "ce":
        return CrossEntropy()
    if name == "ls":
        return LabelSmoothing(label_smoothing)
    if name == "short":
        return short_term(w_short, temperature, ramp=ramp, **options)
    if name == "long":
        return long_term(w_long, lag, long_mode, temperature, ramp=ramp, **options)
    return lstsd(w_long, w_short, lag, long_mode, temperature, ramp=ramp, **options)


# =================================================================================================
# Peers: the methods LSTSD is measured against, in the same trainer, on the same data
# =================================================================================================
#
# Each peer keeps its teacher in a different place, and that place is its cost:
#
#     snapshot    a frozen copy of the weights, one extra forward pass per step   (Yang et al. 2019)
#     born_again  a whole first training run, then a frozen copy of it           (Furlanello et al. 2018)
#     pskd        each sample's prediction from the previous epoch, no extra pass (Kim et al. 2021)
#     te          each sample's moving average of past predictions, no extra pass (Laine & Aila 2017)
#
# We hold only the abstracts of these papers. Each docstring says where its settings come from:
# the paper's abstract, the authors' public code (PS-KD, Temporal Ensembling), or, where there is no
# official code (Snapshot Distillation), a public re-implementation. None was tuned on our data.


def _default_schedule(
    optimizer: torch.optim.Optimizer, epochs: int, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """The trainer's own cosine schedule, for peers that only use `make_scheduler` to learn the budget."""
    from .trainer import cosine_schedule  # trainer.py imports this module

    return cosine_schedule(optimizer, epochs * steps_per_epoch)


def frozen_copy(model: nn.Module) -> nn.Module:
    """A deep copy of `model` in eval mode with `requires_grad=False`: a teacher that cannot move."""
    return copy.deepcopy(model).eval().requires_grad_(False)


def model_bytes(model: nn.Module | None) -> int:
    """Bytes of a model's parameters and buffers (what a weight-snapshot teacher costs in memory)."""
    if model is None:
        return 0
    return sum(t.numel() * t.element_size() for t in model.state_dict().values())


class ModelTeacher(Method):
    """A method whose teacher is a frozen model; the base of `snapshot` and `born_again`.

    The teacher runs once per step on the batch's inputs `x = batch[0]`: under `torch.no_grad()`
    (nothing flows back into it) and inside the trainer's autocast region, because `loss` is
    called there (bf16 on CUDA, fp32 elsewhere), so it costs what a student forward costs.
    """

    extra_forward_passes = 1  # the teacher's forward pass over the batch
    teacher: nn.Module | None = None

    def teacher_probs(self, x: torch.Tensor, temperature: float) -> torch.Tensor:
        """softmax(z_teacher / T) for the batch's inputs: [B, ...] -> [B, C]."""
        with torch.no_grad():
            logits = self.teacher(x)  # [B, C]
        return F.softmax(logits.float() / temperature, dim=1)

    @property
    def state_bytes(self) -> int:
        return model_bytes(self.teacher)

    def state_dict(self) -> dict:
        # the whole module, since a checkpoint is loaded into a method that has no model to copy yet
        return {"teacher": self.teacher}

    def load_state_dict(self, state: dict) -> None:
        self.teacher = None if state["teacher"] is None else frozen_copy(state["teacher"])


class SnapshotDistillation(ModelTeacher):
    """Snapshot Distillation (Yang, Xie, Su & Yuille, CVPR 2019): a teacher from the same run.

    Training is cut into K cycles of a cosine learning rate that restarts at lr₀ at each cycle's
    start. The model at the end of cycle k, frozen, teaches every step of cycle k + 1; the first
    cycle has no teacher and trains with plain CE:

        lr(s)   = lr₀ · ½ (1 + cos(π · (s − S_k) / P_k))        step s in cycle k (start S_k, length P_k)
        p_t     = softmax(z_teacher / T)                        the temperature-smoothed teacher
        L       = λ_s · CE(z, y) + λ_t · KL(p_t ‖ softmax(z))   batch mean; cycle 1: L = CE(z, y)

    Only the teacher is tempered: KL(p_t ‖ q) = −Σ p_t log q − H(p_t), so this is the soft-target
    cross-entropy −Σ p_t log q up to the teacher's entropy, a constant: same gradients.

    Defaults and where they come from. The mechanism (cyclic LR, last snapshot of a cycle teaches
    the whole next cycle, smoothed teacher) is the paper's abstract; its constants could not be
    read here and there is no official code, so we take those of a public re-implementation:
    T = 3, λ_s = 1 + 1/T, λ_t = 1, K = 4 cycles over the run (there 300 epochs, 75 per cycle;
    here `epochs / 4`, e.g. 15 of 60). The teacher runs in eval mode.

    Cost: one extra forward pass per step from the second cycle on, and one model copy in memory.
    """

    name = "snapshot"

    def __init__(
        self,
        cycles: int = 4,
        temperature: float = 3.0,
        student_weight: float | None = None,
        teacher_weight: float = 1.0,
    ) -> None:
        check_range("cycles", cycles, 1, 1000, integer=True)
        check_range("temperature", temperature, 0.0, 100.0, low_inclusive=False)
        student_weight = 1.0 + 1.0 / temperature if student_weight is None else student_weight
        check_range("student_weight", student_weight, 0.0, 100.0)
        check_range("teacher_weight", teacher_weight, 0.0, 100.0)
        self.cycles, self.temperature = cycles, temperature
        self.student_weight, self.teacher_weight = student_weight, teacher_weight
        self.bounds: list[int] | None = None  # epochs where cycles start, plus the end

    def cycle_bounds(self, epochs: int) -> list[int]:
        """[b_0 = 0, b_1, …, b_K = epochs]: cycle k covers epochs b_k … b_{k+1} − 1."""
        cycles = min(self.cycles, epochs)  # a cycle is at least one epoch
        return [round(k * epochs / cycles) for k in range(cycles + 1)]

    def make_scheduler(
        self, optimizer: torch.optim.Optimizer, epochs: int, steps_per_epoch: int
    ) -> torch.optim.lr_scheduler.LambdaLR:
        """The cyclic cosine schedule above, stepped once per batch (called by the Trainer)."""
        self.bounds = self.cycle_bounds(epochs)
        starts = [b * steps_per_epoch for b in self.bounds]  # S_0 … S_K in steps

        def factor(step: int) -> float:
            k = max(i for i in range(len(starts) - 1) if starts[i] <= step)  # the cycle of `step`
            position = min(step - starts[k], starts[k + 1] - starts[k])
            # ½ (1 + cos(π (s − S_k) / P_k))
            return 0.5 * (1.0 + math.cos(math.pi * position / (starts[k + 1] - starts[k])))

        return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)

    def loss(self, logits: torch.Tensor, batch: Batch, epoch: int) -> torch.Tensor:
        x, y, _ = batch
        ce = per_sample_ce(logits, y).mean()
        if self.teacher is None:  # the first cycle: no snapshot yet
            return ce
        p_t = self.teacher_probs(x, self.temperature)  # [B, C]  softmax(z_teacher / T)
        # λ_s · CE(z, y) + λ_t · KL(p_t ‖ softmax(z)), batch mean
        return self.student_weight * ce + self.teacher_weight * per_sample_kl(p_t, logits).mean()

    def end_epoch(self, epoch: int, model: nn.Module) -> None:
        """At the end of a cycle that another cycle follows, the model becomes the teacher."""
        if self.bounds is None:
            raise ConfigError(
                "snapshot needs its cycle schedule: train it with the Trainer, which "
                "calls make_scheduler(optimizer, epochs, steps_per_epoch)"
            )
        if epoch + 1 in self.bounds[1:-1]:
            if self.teacher is None:
                self.teacher = frozen_copy(model)
            else:  # reuse the copy's memory
                self.teacher.load_state_dict(model.state_dict())

    def __repr__(self) -> str:
        return (
            f"SnapshotDistillation(cycles={self.cycles}, temperature={self.temperature}, "
            f"student_weight={self.student_weight:.4g}, teacher_weight={self.teacher_weight})"
        )


class BornAgain(ModelTeacher):
    """Born-Again Networks (Furlanello, Lipton, Tschannen, Itti & Anandkumar, ICML 2018).

    Two generations of the same architecture. Generation 1 trains with plain CE. Generation 2
    starts again from a fresh initialisation (another seed, `second_generation_seed`) and learns
    from the labels and from generation 1, frozen:

        p_t = softmax(z_gen1 / τ)
        L   = (1 − w) · CE(z, y) + w · τ² · KL(p_t ‖ softmax(z / τ))     (KL: batch mean)

    Defaults: w = ½, τ = 1. The abstract asks for students "parameterized identically to their
    teachers"; the label term and its equal weight are our choice (weights summing to 1 keep the
    gradient on CE's scale, as for every method here). One born-again generation, the paper's
    basic step; the teacher runs in eval mode.

    Budget and cost, stated plainly: each generation gets the full epoch budget, so Born-Again
    trains twice. `experiments.train("born_again", …)` runs generation 1 (it *is* the CE run of
    the same seed), then generation 2 with this method, and reports each epoch's `seconds` as
    generation 1's epoch plus generation 2's: seconds per epoch relative to CE then shows the
    whole price (about 2× plus the teacher's forward pass). `first_generation` keeps generation
    1's `Run`. To use the class directly, give it the teacher with `set_teacher(model)`.
    """

    name = "born_again"
    SEED_OFFSET = 10_000  # generation 2's seed is the run's seed + this

    def __init__(self, weight: float = 0.5, temperature: float = 1.0) -> None:
        check_range("born_again_weight", weight, 0.0, 1.0)
        check_range("temperature", temperature, 0.0, 100.0, low_inclusive=False)
        self.weight, self.temperature = weight, temperature
        self.first_generation = None  # generation 1's experiments.Run, when trained by experiments.train

    @classmethod
    def second_generation_seed(cls, seed: int) -> int:
        """The seed of generation 2's fresh initialisation (and shuffling), for a run with `seed`."""
        return seed + cls.SEED_OFFSET

    def set_teacher(self, model: nn.Module, first_generation=None) -> None:
        """Generation 1's trained model becomes the (frozen, copied) teacher; `first_generation`
        optionally keeps generation 1's `experiments.Run` (its history, for the notebooks)."""
        self.teacher = frozen_copy(model)
        self.first_generation = first_generation

    def setup(self, num_samples: int, num_classes: int, device: torch.device) -> None:
        if self.teacher is None:
            raise ConfigError(
                "born_again needs its generation-1 teacher: train it with "
                "experiments.train('born_again', config), or call set_teacher(model) first"
            )
        self.teacher.to(device)

    def loss(self, logits: torch.Tensor, batch: Batch, epoch: int) -> torch.Tensor:
        x, y, _ = batch
        p_t = self.teacher_probs(x, self.temperature)  # [B, C]  softmax(z_gen1 / τ)
        # (1 − w) · CE(z, y) + w · τ² · KL(p_t ‖ softmax(z / τ))
        return (1.0 - self.weight) * per_sample_ce(logits, y).mean() + self.weight * kd_loss(
            logits, p_t, self.temperature
        )

    def __repr__(self) -> str:
        return f"BornAgain(weight={self.weight}, temperature={self.temperature})"


class ProgressiveSelfKD(Method):
    """PS-KD, progressive self-knowledge distillation (Kim, Ji, Yoon & Hwang, ICCV 2021).

    The target mixes the label with the model's own prediction for the same sample at the
    previous epoch, and trusts the past more and more as training goes on:

        α_t = α_T · t / T                               t = epoch + 1 = 1 … T
        target_i = (1 − α_t) · onehot(y_i) + α_t · p_i^(t−1)
        L = 1/B Σ_i −Σ_c target_i,c · log softmax(z_i)_c

    p^(t−1) is the previous epoch's softmax, recorded during that epoch's own training forward
    pass (no extra pass), in a `SnapshotBuffer` with lag 1 (two fp16 slots of N × C). In the first
    epoch there is no previous prediction and the target is the label, as in the authors' code.

    Defaults: α_T = 0.8, the authors' public code. The budget T is the run's epoch count, which the
    trainer hands over through `make_scheduler`; the learning-rate schedule stays the trainer's.
    The official code keeps fp32 probabilities; our fp16 log-probabilities are renormalised on read.
    """

    name = "pskd"

    def __init__(self, alpha: float = 0.8, epochs: int | None = None) -> None:
        check_range("pskd_alpha", alpha, 0.0, 1.0)
        self.alpha, self.epochs = alpha, epochs

    def make_scheduler(
        self, optimizer: torch.optim.Optimizer, epochs: int, steps_per_epoch: int
    ) -> torch.optim.lr_scheduler.LRScheduler:
        self.epochs = epochs  # T, for α_t
        return _default_schedule(optimizer, epochs, steps_per_epoch)

    def setup(self, num_samples: int, num_classes: int, device: torch.device) -> None:
        self.num_classes = num_classes
        self.buffer = SnapshotBuffer(num_samples, num_classes, 1, "sliding", device)

    def alpha_at(self, epoch: int) -> float:
        """α_t = α_T · (epoch + 1) / T for a 0-based `epoch`."""
        if self.epochs is None:
            raise ConfigError("pskd needs the epoch budget T: pass epochs=… or train it with the Trainer")
        return self.alpha * (epoch + 1) / self.epochs

    def loss(self, logits: torch.Tensor, batch: Batch, epoch: int) -> torch.Tensor:
        _, y, index = batch
        previous, valid = self.buffer.log_probs([epoch - 1], index)  # [1, B, C], [1, B]
        p_prev = previous[0].log_softmax(1).exp()  # [B, C]  renormalised after fp16 storage
        a = self.alpha_at(epoch) * valid[0].float()[:, None]  # [B, 1]  0 where no previous epoch
        # target = (1 − α_t) · onehot(y) + α_t · p^(t−1)
        target = (1.0 - a) * F.one_hot(y, self.num_classes).float() + a * p_prev  # [B, C]
        loss = soft_target_ce(target, logits).mean()
        self.buffer.record(epoch, index, F.log_softmax(logits.detach().float(), dim=1))
        return loss

    def __repr__(self) -> str:
        return f"ProgressiveSelfKD(alpha={self.alpha}, epochs={self.epochs})"


class TemporalEnsembling(Method):
    """Temporal Ensembling (Laine & Aila, ICLR 2017), fully supervised, as a label-noise peer.

    Each sample keeps an exponential moving average Z_i of its past predictions; with start-up
    bias correction it is the sample's target. After n_i updates of sample i:

        Z_i ← α · Z_i + (1 − α) · softmax(z_i)          once per epoch, when i is trained on
        target_i = Z_i / (1 − α^{n_i})                  (Z starts at 0; this removes the bias)
        w(e) = w_max · exp(−5 (1 − e / R)²) for e < R, w_max after        (Gaussian ramp-up)
        L = 1/B Σ_i [ CE(z_i, y_i) + w(e) · 1/C Σ_c (softmax(z_i)_c − target_i,c)² ]

    The target is read before sample i's update in the step that sees it, which, with each sample
    seen once per epoch, is the paper's end-of-epoch update. A sample with no update yet (the
    first epoch) has no target and only its CE counts.

    Defaults, from the authors' public code: α = 0.6; w_max = 30 (its temporal-ensembling
    presets) times the labelled fraction, here 1; the ramp-up R is 80 of its 300 epochs, so here
    R = round(80/300 · epochs). The optimiser stays the trainer's (SGD, cosine), not the paper's Adam.
    Memory: Z as N × C fp32 plus an update count per sample; no extra forward pass.
    """

    name = "te"
    ensemble: torch.Tensor | None = None  # [N, C] Z, allocated by setup
    updates: torch.Tensor | None = None  # [N] n_i

    def __init__(
        self, decay: float = 0.6, max_weight: float = 30.0, rampup: float = 80 / 300, epochs: int | None = None
    ) -> None:
        check_range("te_decay", decay, 0.0, 1.0, high_inclusive=False)
        check_range("te_max_weight", max_weight, 0.0, 1e6)
        check_range("te_rampup", rampup, 0.0, 1.0)
        self.decay, self.max_weight, self.rampup, self.epochs = decay, max_weight, rampup, epochs

    def make_scheduler(
        self, optimizer: torch.optim.Optimizer, epochs: int, steps_per_epoch: int
    ) -> torch.optim.lr_scheduler.LRScheduler:
        self.epochs = epochs  # for the ramp-up length R
        return _default_schedule(optimizer, epochs, steps_per_epoch)

    def setup(self, num_samples: int, num_classes: int, device: torch.device) -> None:
        self.ensemble = torch.zeros(num_samples, num_classes, device=device)  # [N, C]  Z
        self.updates = torch.zeros(num_samples, dtype=torch.int32, device=device)  # [N]  n_i

    def weight(self, epoch: int) -> float:
        """w(e) = w_max · exp(−5 (1 − e/R)²) before epoch R, w_max from then on."""
        if self.epochs is None:
            raise ConfigError("te needs the epoch budget: pass epochs=… or train it with the Trainer")
        ramp = round(self.rampup * self.epochs)
        if epoch >= ramp:
            return self.max_weight
        return self.max_weight * math.exp(-5.0 * (1.0 - epoch / ramp) ** 2)

    def loss(self, logits: torch.Tensor, batch: Batch, epoch: int) -> torch.Tensor:
        _, y, index = batch
        p = F.softmax(logits.float(), dim=1)  # [B, C]
        with torch.no_grad():
            n = self.updates[index]  # [B]
            z = self.ensemble[index]  # [B, C]
            # target = Z / (1 − α^n); a sample with n = 0 has none (its term is masked below)
            target = z / (1.0 - self.decay ** n.clamp_min(1).double()).float()[:, None]
            has_target = (n > 0).float()  # [B]
        mse = ((p - target) ** 2).mean(dim=1) * has_target  # [B]  1/C Σ_c (p − target)²
        loss = per_sample_ce(logits, y).mean() + self.weight(epoch) * mse.mean()
        with torch.no_grad():  # Z ← α Z + (1 − α) p, after reading the target
            self.ensemble[index] = self.decay * z + (1.0 - self.decay) * p.detach()
            self.updates[index] = n + 1
        return loss

    @property
    def state_bytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.ensemble, self.updates) if t is not None)

    def state_dict(self) -> dict:
        return {"ensemble": self.ensemble, "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        self.ensemble.copy_(state["ensemble"])
        self.updates.copy_(state["updates"])

    def __repr__(self) -> str:
        return (
            f"TemporalEnsembling(decay={self.decay}, max_weight={self.max_weight}, "
            f"rampup={self.rampup:.4g}, epochs={self.epochs})"
        )


PEERS: dict[str, type[Method]] = {
    "snapshot": SnapshotDistillation,
    "born_again": BornAgain,
    "pskd": ProgressiveSelfKD,
    "te": TemporalEnsembling,
}
