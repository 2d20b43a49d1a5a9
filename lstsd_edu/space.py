"""Search spaces: how a tuner draws a value for one setting.

Each method declares the settings worth searching and their ranges (`Method.search_space`), next
to the code that reads them; `tuning.py` draws from them. The optimiser's learning rate and
weight decay are in every method's space (`OPTIMISER`): a baseline with a well-chosen weight
decay is a different, stronger baseline, and a method must win against that one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LogUniform:
    """A number drawn uniformly on a log scale between `low` and `high`."""

    low: float
    high: float

    def draw(self, rng: np.random.Generator) -> float:
        return float(np.exp(rng.uniform(np.log(self.low), np.log(self.high))))

    def __str__(self) -> str:
        return f"log-uniform [{self.low:g}, {self.high:g}]"


@dataclass(frozen=True)
class Uniform:
    """A number drawn uniformly between `low` and `high`."""

    low: float
    high: float

    def draw(self, rng: np.random.Generator) -> float:
        return float(rng.uniform(self.low, self.high))

    def __str__(self) -> str:
        return f"uniform [{self.low:g}, {self.high:g}]"


@dataclass(frozen=True)
class Integers:
    """An integer drawn uniformly from `low` … `high` (both included)."""

    low: int
    high: int

    def draw(self, rng: np.random.Generator) -> int:
        return int(rng.integers(self.low, self.high + 1))

    def __str__(self) -> str:
        return f"integer {self.low}…{self.high}"


@dataclass(frozen=True)
class OneOf:
    """One of a few values, each equally likely."""

    values: tuple

    def draw(self, rng: np.random.Generator):
        return self.values[int(rng.integers(len(self.values)))]

    def __str__(self) -> str:
        return "one of " + ", ".join(map(str, self.values))


OPTIMISER = {"lr": LogUniform(0.01, 0.5), "weight_decay": LogUniform(1e-5, 5e-2)}
