"""Drift of a feature with too many distinct values for a table of categories (an identifier, a
tail number, free text): the share of the window's values the baseline never saw, against the
share a new value from the baseline's own distribution would be unseen.

The baseline keeps a distinct sample (Gibbons' distinct sampling): the values whose 64-bit hash
falls under ``2**64 >> level``, each counted exactly, with ``level`` raised until at most
``capacity`` values are kept. Sampling by value, not by draw, keeps every sampled value's count
exact, so the window's values are judged on the same sampled share of the value space.

The baseline's unseen share is the Good-Turing estimate of the missing mass: the values seen
once, over the draws. Its variance is Esty's (1983), ``(n1 + 2 n2 - n1^2 / N) / N^2``, about
three times the binomial one on a uniform tail, which is why a plain two-proportion test is not
used: it would alarm several times too often. Given the baseline, each window draw is unseen
with probability equal to the missing mass, so the window's share is binomial.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from scipy.special import ndtr
from scipy.stats import binom

from driftline.detectors.continuous import NotChecked

CAPACITY = 2_000  # values kept in a baseline's sample
SMALL_EXPECTED = 5.0  # unseen values a window expects, under which the test is exact


def value_hash(value: object) -> str:
    """The 64-bit hash of a value's text, as 16 hex digits (what a baseline stores)."""
    return hashlib.blake2b(str(value).encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


def _limit(level: int) -> int:
    return (1 << 64) >> level


@dataclass(frozen=True)
class ValueSample:
    """A baseline's distinct sample of one feature: hash to count, over ``size`` sampled draws."""

    level: int
    counts: dict[str, int]
    size: int

    def to_record(self) -> dict[str, Any]:
        return {"level": self.level, "size": self.size, "counts": self.counts}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> ValueSample:
        return cls(int(record["level"]), dict(record["counts"]), int(record["size"]))


@dataclass
class ValueSampler:
    """Builds a ``ValueSample`` a chunk of values at a time, in bounded memory."""

    capacity: int = CAPACITY
    level: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    size: int = 0

    def add(self, counts: Mapping[str, int]) -> None:
        """Take counts of present values (as text: a categorical feature's counts)."""
        limit = _limit(self.level)
        for value, count in counts.items():
            digest = value_hash(value)
            if int(digest, 16) < limit:
                self.counts[digest] += count
                self.size += count
                if len(self.counts) > self.capacity:
                    limit = self._raise_level()

    def _raise_level(self) -> int:
        while len(self.counts) > self.capacity:
            self.level += 1
            limit = _limit(self.level)
            self.counts = Counter({h: c for h, c in self.counts.items() if int(h, 16) < limit})
        self.size = sum(self.counts.values())
        return _limit(self.level)

    def build(self) -> ValueSample:
        return ValueSample(self.level, dict(self.counts), self.size)


@dataclass(frozen=True)
class UnseenShare:
    baseline_share: float  # Good-Turing: values seen once over draws, in the sample
    current_share: float  # window draws in the sample whose value the baseline never saw
    difference: float  # current minus baseline, the effect size
    z: float
    p_value: float
    baseline_size: int  # sampled draws on each side
    current_size: int


def check_unseen(sample: ValueSample, window: Mapping[str, int]) -> UnseenShare | NotChecked:
    """Compare the window's share of unseen values (its counts of present values, as text)
    with the baseline's missing mass."""
    limit = _limit(sample.level)
    drawn = unseen = 0
    for value, count in window.items():
        digest = value_hash(value)
        if int(digest, 16) < limit:
            drawn += count
            unseen += count if digest not in sample.counts else 0
    n = sample.size
    if n == 0 or drawn == 0:
        return NotChecked(f"no sampled values to compare (baseline {n}, window {drawn})")
    once = sum(1 for count in sample.counts.values() if count == 1)
    twice = sum(1 for count in sample.counts.values() if count == 2)
    expected, observed = once / n, unseen / drawn
    pooled = (once + unseen) / (n + drawn)
    baseline_variance = max((once + 2 * twice - once * once / n) / n**2, pooled * (1 - pooled) / n)
    spread = math.sqrt(pooled * (1 - pooled) / drawn + baseline_variance)
    if spread == 0.0:  # nothing unseen on either side
        return UnseenShare(expected, observed, 0.0, 0.0, 1.0, n, drawn)
    z = (observed - expected) / spread
    if pooled * drawn < SMALL_EXPECTED:
        # Too few unseen values expected for the normal approximation (a handful would alarm
        # many times the rate): the window's count against its binomial law, two-sided.
        tails = binom.cdf(unseen, drawn, pooled), binom.sf(unseen - 1, drawn, pooled)
        p_value = min(1.0, 2 * float(min(tails)))
    else:
        p_value = float(2 * ndtr(-abs(z)))
    return UnseenShare(expected, observed, observed - expected, z, p_value, n, drawn)
