"""One error type for bad input, the checks that raise it, and rules that carry a check.

Every message names the parameter, the value it got and what is allowed, e.g.
`lag must be an integer in [1, 1000], got 0`. The CLI prints that one line and exits with code 2.

A rule (`Range`, `Choice`) is defined once, next to the code whose limits it states (the buffer's
lag, the registries' names), and checked wherever a value enters: `Config.validate` and the few
public classes that take such a value directly (`SnapshotBuffer`, `Trainer`). A method declares
each of its own knobs as a `Setting` (its default, help text and rule), which `Config` turns into
a field.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


class ConfigError(ValueError):
    """A parameter has a value the library cannot use."""


def check_choice(name: str, value: Any, allowed: Iterable[Any]) -> None:
    allowed = tuple(allowed)
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(map(str, allowed))}; got {value!r}")


def check_range(
    name: str,
    value: Any,
    low: float,
    high: float,
    *,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
    integer: bool = False,
) -> None:
    kind = "an integer" if integer else "a number"
    ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok_type:
        raise ConfigError(f"{name} must be {kind}; got {value!r}")
    above = value >= low if low_inclusive else value > low
    below = value <= high if high_inclusive else value < high
    if not (above and below):
        interval = f"{'[' if low_inclusive else '('}{_bound(low)}, {_bound(high)}{']' if high_inclusive else ')'}"
        raise ConfigError(f"{name} must be {kind} in {interval}; got {value!r}")


def _bound(value: float) -> str:
    """An interval's end as written: integers whole (4294967295, not 4.29497e+09), others short."""
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else f"{value:g}"


@dataclass(frozen=True)
class Range:
    """A number (or, with `integer=True`, an integer) in an interval."""

    low: float
    high: float
    low_inclusive: bool = True
    high_inclusive: bool = True
    integer: bool = False

    def check(self, name: str, value: Any) -> None:
        check_range(
            name,
            value,
            self.low,
            self.high,
            low_inclusive=self.low_inclusive,
            high_inclusive=self.high_inclusive,
            integer=self.integer,
        )

    def __str__(self) -> str:
        low, high = ("[" if self.low_inclusive else "("), ("]" if self.high_inclusive else ")")
        return f"{'integer' if self.integer else 'number'} in {low}{_bound(self.low)}, {_bound(self.high)}{high}"


@dataclass(frozen=True)
class Choice:
    """One of a fixed set of values."""

    options: tuple

    def check(self, name: str, value: Any) -> None:
        check_choice(name, value, self.options)

    def __str__(self) -> str:
        return ", ".join(map(str, self.options))


PROBABILITY = Range(0.0, 1.0)
TEMPERATURE = Range(0.0, 100.0, low_inclusive=False)


@dataclass(frozen=True)
class Setting:
    """One of a method's own knobs, as the method declares it (`Method.settings`): `config.Config`
    makes it a field of that name, with a command-line flag, checked by `rule` in `Config.validate`."""

    default: Any
    help: str
    rule: Range | Choice | None = None
