"""How far from the collector's clock an event may be dated before it is flagged."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class ClockBounds:
    """How far before and after the collector's clock an event may be dated without a flag.

    The past bound is wide because an agent spools events while Kafka is away and sends them
    when it returns: after an outage of days they are days old, and rightly so. Nothing comes
    from the future, but clocks disagree: five minutes, as Kerberos allows, covers a badly kept
    one without letting a caller date a record as it likes.
    """

    past_s: float = 7 * 24 * 3600.0
    future_s: float = 300.0

    def skew(self, occurred_at: datetime, recorded_at: datetime) -> float | None:
        """``occurred_at - recorded_at`` in seconds when it is out of bounds, else None."""
        skew = (occurred_at - recorded_at).total_seconds()
        return None if -self.past_s <= skew <= self.future_s else skew


DEFAULT_BOUNDS = ClockBounds()
