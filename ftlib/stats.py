"""Paired comparisons over seeds: is one recipe really better than another, or is it noise?

Two recipes run with the same seeds (same data split, same initial head, same batches) give
paired results. The difference per seed cancels what the seed does to both, so the interval of
the mean paired difference is much narrower than comparing two means with their own spreads.
A winner is called only when that interval excludes zero; otherwise the data cannot tell.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

CONFIDENCE = 0.95
"""Default confidence level of the interval."""


@dataclass(frozen=True)
class PairedComparison:
    """The mean difference ``a - b`` over paired runs and its t confidence interval.

    ``str(comparison)`` reads like a sentence; ``winner`` is the name of the better recipe, or
    None when the interval contains zero. Higher is taken to be better (accuracies).
    """

    names: tuple[str, str]
    differences: tuple[float, ...]
    mean: float
    low: float
    high: float
    confidence: float

    @property
    def winner(self) -> str | None:
        """``names[0]`` if the whole interval is above 0, ``names[1]`` if below, else None."""
        if self.low > 0:
            return self.names[0]
        if self.high < 0:
            return self.names[1]
        return None

    @property
    def verdict(self) -> str:
        """``"<name> is better"`` or ``"the data cannot tell"``."""
        return f"{self.winner} is better" if self.winner else "the data cannot tell"

    def __str__(self) -> str:
        a, b = self.names
        return (
            f"{a} - {b}: {self.mean:+.3f} ({self.confidence:.0%} interval {self.low:+.3f} to "
            f"{self.high:+.3f}, {len(self.differences)} paired runs): {self.verdict}"
        )


def compare_paired(
    a: Sequence[float],
    b: Sequence[float],
    *,
    names: tuple[str, str] = ("a", "b"),
    confidence: float = CONFIDENCE,
) -> PairedComparison:
    """Compare two recipes run on the same seeds, result by result.

    Why: a lesson or a project should call a winner only when the difference is larger than what
    the seeds alone would produce.

    Args:
        a, b: one result per seed (e.g. test accuracy), in the same seed order.
        names: what to call the two recipes in the verdict.
        confidence: level of the two-sided t interval, between 0 and 1.

    Returns:
        A ``PairedComparison`` with the mean of ``a[i] - b[i]`` and its interval
        ``mean +- t * sd / sqrt(n)``, t from Student's distribution with n - 1 degrees of freedom.

    Raises:
        ValueError: ``a`` and ``b`` differ in length, hold fewer than 2 results, hold a value
            that is not a finite number, or ``confidence`` is not strictly between 0 and 1.
    """
    if len(a) != len(b):
        raise ValueError(
            f"paired results need one value per seed on both sides; got {len(a)} and {len(b)}"
        )
    if len(a) < 2:
        raise ValueError(f"an interval needs at least 2 paired results, got {len(a)}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1 (e.g. 0.95), got {confidence!r}")
    pairs = zip(a, b, strict=True)
    differences = tuple(_finite(x, names[0]) - _finite(y, names[1]) for x, y in pairs)
    n = len(differences)
    mean = math.fsum(differences) / n
    spread = math.sqrt(math.fsum((d - mean) ** 2 for d in differences) / (n - 1))
    half_width = _t_quantile((1 + confidence) / 2, n - 1) * spread / math.sqrt(n)
    return PairedComparison(
        names, differences, mean, mean - half_width, mean + half_width, confidence
    )


def _finite(value: float, name: str) -> float:
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"the results of {name!r} must be finite numbers, got {value!r}")
    return number


def _t_quantile(probability: float, degrees_of_freedom: int) -> float:
    from scipy.stats import t  # scipy comes with scikit-learn; imported only when needed

    return float(t.ppf(probability, degrees_of_freedom))
