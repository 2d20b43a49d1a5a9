"""Born-Again Networks: a whole first training run teaches a second one.

The most expensive peer: it trains twice. It declares that through the method interface
(`prepare` trains generation 1, `model_seed` gives generation 2 a fresh initialisation,
`prior_seconds` adds generation 1's time to each epoch), so nothing outside this file needs to
know that Born-Again has two generations.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..errors import PROBABILITY, TEMPERATURE, ConfigError, Setting
from ..losses import kd_loss, per_sample_ce
from ..space import OPTIMISER, Uniform
from .base import Batch
from .model_teacher import ModelTeacher, frozen_copy


class BornAgain(ModelTeacher):
    """Born-Again Networks (Furlanello, Lipton, Tschannen, Itti & Anandkumar, ICML 2018).

    Two generations of the same architecture. Generation 1 trains with plain CE. Generation 2
    starts again from a fresh initialisation (another seed, `model_seed`) and learns from the
    labels and from generation 1, frozen:

        p_t = softmax(z_gen1 / τ)
        L   = (1 − w) · CE(z, y) + w · τ² · KL(p_t ‖ softmax(z / τ))     (KL: batch mean)

    Defaults: w = ½, τ = 1. The abstract asks for students "parameterized identically to their
    teachers"; the label term and its equal weight are our choice (weights summing to 1 keep the
    gradient on CE's scale, as for every method here). One born-again generation, the paper's
    basic step; the teacher runs in eval mode.

    Budget and cost, stated plainly: each generation gets the full epoch budget, so Born-Again
    trains twice. `experiments.train("born_again", …)` calls `prepare`, which trains generation 1
    (it *is* the CE run of the same seed), then trains generation 2 with this method; each epoch's
    `seconds` is generation 1's epoch plus generation 2's, so seconds per epoch relative to CE
    show the whole price (about 2× plus the teacher's forward pass). `first_generation` keeps
    generation 1's `Run`. To use the class directly, give it the teacher with `set_teacher(model)`.
    """

    name = "born_again"
    colour = "#56B4E9"  # sky blue
    settings = {
        "born_again_weight": Setting(0.5, "weight w of the KL term (1 − w on CE)", PROBABILITY),
        "born_again_temperature": Setting(1.0, "temperature τ", TEMPERATURE),
    }
    search_space = {**OPTIMISER, "born_again_weight": Uniform(0.2, 0.8), "born_again_temperature": Uniform(1.0, 4.0)}
    tuned = {  # chosen on validation by `lstsd-edu tune` (benchmarks/tuned_presets.py writes it)
        "digits": {
            "lr": 0.011784868914844005,
            "weight_decay": 0.0026140410760114832,
            "born_again_weight": 0.5752323173382747,
            "born_again_temperature": 1.5357900623968757,
        },
        "mnist1d": {
            "lr": 0.035200341366702304,
            "weight_decay": 0.03857106039933756,
            "born_again_weight": 0.47002297207696575,
            "born_again_temperature": 3.143614672322447,
        },
        "textsynth": {
            "lr": 0.4411623070204742,
            "weight_decay": 0.00068370072122426,
            "born_again_weight": 0.3900038834911521,
            "born_again_temperature": 2.612886894056576,
        },
    }
    SEED_OFFSET = 10_000  # generation 2's seed is the run's seed + this

    def __init__(self, weight: float = 0.5, temperature: float = 1.0) -> None:
        self.weight, self.temperature = weight, temperature
        self.first_generation = None  # generation 1's experiments.Run, when trained by `prepare`

    @classmethod
    def from_config(cls, config) -> BornAgain:
        return cls(config.born_again_weight, config.born_again_temperature)

    def prepare(self, pretrain: Callable, seed: int) -> None:
        """Train generation 1 (plain CE, this run's seed); it becomes the teacher."""
        first = pretrain("ce", seed)
        self.set_teacher(first.trainer.model, first)

    def model_seed(self, seed: int) -> int:
        """Generation 2's fresh initialisation (and shuffling) is drawn with seed + SEED_OFFSET."""
        return seed + self.SEED_OFFSET

    def prior_seconds(self, epoch: int) -> float:
        """Generation 1's training time for the same epoch of the budget (0 if it had no such epoch)."""
        seconds = [] if self.first_generation is None else self.first_generation.history.seconds.tolist()
        return seconds[epoch] if epoch < len(seconds) else 0.0

    def set_teacher(self, model: nn.Module, first_generation=None) -> None:
        """Generation 1's trained model becomes the (frozen, copied) teacher; `first_generation`
        optionally keeps generation 1's `experiments.Run` (its history, for the notebooks)."""
        self.teacher = frozen_copy(model)
        self.first_generation = first_generation

    def setup(self, num_samples: int, num_classes: int, device: torch.device, epochs: int) -> None:
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
