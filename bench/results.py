"""Rows of the results table: what was measured, against which bar, and whether it is met."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum


class Goal(Enum):
    """How a bar reads the two numbers of a row."""

    RATIO_AT_LEAST = "ratio >="  # mirror / reference must reach the threshold
    RATIO_AT_MOST = "ratio <="  # mirror / reference must stay under it
    MIRROR_AT_MOST = "mirror <="  # the mirror's own value must stay under it
    MIRROR_AT_LEAST = "mirror >="  # the mirror's own value must reach it
    MIRROR_EQUALS = "mirror ="  # the mirror's own value, to two decimals


@dataclass(frozen=True, slots=True)
class Bar:
    goal: Goal
    threshold: float
    unit: str = "x"

    def text(self) -> str:
        value = f"{self.threshold:g}" if self.unit != "x" else f"{self.threshold:.2f}"
        spaced = f" {self.unit}" if self.unit != "x" else "x"
        return f"{self.goal.value} {value}{spaced}"

    def met(self, mirror: float, reference: float | None) -> bool | None:
        """True/False when decidable; None when a ratio is needed but has no reference."""
        if self.goal is Goal.MIRROR_AT_MOST:
            return mirror <= self.threshold
        if self.goal is Goal.MIRROR_AT_LEAST:
            return mirror >= self.threshold
        if self.goal is Goal.MIRROR_EQUALS:
            return round(mirror, 2) == round(self.threshold, 2)
        if reference is None or reference <= 0:
            return None
        ratio = mirror / reference
        if self.goal is Goal.RATIO_AT_LEAST:
            return ratio >= self.threshold
        return ratio <= self.threshold


def at_least(threshold: float) -> Bar:
    return Bar(Goal.RATIO_AT_LEAST, threshold)


def at_most(threshold: float) -> Bar:
    return Bar(Goal.RATIO_AT_MOST, threshold)


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the table. `error` replaces the numbers when the workload failed."""

    number: int
    workload: str
    metric: str
    mirror: float | None
    reference: float | None
    bar: Bar
    digits: int = 3  # significant digits shown for the two values
    error: str | None = None

    @property
    def ratio(self) -> float | None:
        if self.mirror is None or self.reference is None or self.reference <= 0:
            return None
        return self.mirror / self.reference

    @property
    def met(self) -> bool | None:
        if self.error is not None or self.mirror is None:
            return None
        return self.bar.met(self.mirror, self.reference)


def failed(number: int, workload: str, error: str) -> Row:
    """The row standing for a workload that could not be measured."""
    return Row(number, workload, "-", None, None, Bar(Goal.MIRROR_AT_MOST, 0), error=error)


@dataclass
class Samples:
    """Per-round measurements of one metric on both servers."""

    mirror: list[float] = field(default_factory=list)
    reference: list[float] = field(default_factory=list)

    def add(self, side: str, value: float) -> None:
        (self.mirror if side == "mirror" else self.reference).append(value)

    def medians(self) -> tuple[float, float]:
        return median(self.mirror), median(self.reference)

    def describe(self, digits: int = 3) -> str:
        def show(values: Sequence[float]) -> str:
            return ", ".join(number(v, digits) for v in values)

        return f"mirror [{show(self.mirror)}]; reference [{show(self.reference)}]"


def median(values: Sequence[float]) -> float:
    if not values:
        raise ValueError("no measurement was taken")
    return float(statistics.median(values))


def number(value: float, digits: int = 3) -> str:
    """Significant digits without scientific notation: 1234.5 -> 1,235; 0.01234 -> 0.0123."""
    if value == 0:
        return "0"
    magnitude = len(str(int(abs(value)))) if abs(value) >= 1 else 0
    decimals = max(digits - magnitude, 0)
    if abs(value) < 1:
        text = f"{value:.{digits}g}"
        return text if "e" not in text else f"{value:.6f}"
    return f"{value:,.{decimals}f}"


def exactly(threshold: float) -> Bar:
    return Bar(Goal.MIRROR_EQUALS, threshold)


def mirror_at_most(threshold: float, unit: str = "x") -> Bar:
    return Bar(Goal.MIRROR_AT_MOST, threshold, unit)
