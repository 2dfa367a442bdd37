"""The service and model that the agent's event counters are labelled with, in bounded number.

Every counter about events (recorded, delivered, failed, dropped, redactions, contract
violations) is kept per (service, model), the model being the event's model name. So that a
process recording for ever more models cannot grow Prometheus' series without bound, one
``LabelCap`` per agent tells at most ``MAX_PAIRS`` pairs apart, the first it sees; an event of
any other pair is counted under model ``(other)`` of its service, or of service ``(other)`` when
its service is new too. A counter thus has at most ``MAX_PAIRS`` + services + 1 series.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from pydantic_core import from_json

MAX_PAIRS = 100
MAX_LABEL_CHARS = 200  # the contract's bound on a name; an unchecked document may exceed it
OTHER = "(other)"  # the pairs past MAX_PAIRS
NONE = "(none)"  # no service or model name could be read: a document the contract refuses
# The wire form (field order) names the service and model in its first bytes: a partial parse
# of this many reads them for any event within the contract's bounds.
WIRE_PREFIX_BYTES = 4096


class EventLabels(NamedTuple):
    service: str
    model: str


UNKNOWN = EventLabels(NONE, NONE)


def of_document(document: Mapping[str, Any]) -> EventLabels:
    """The labels of an event document, as a caller hands it to the agent."""
    model = document.get("model")
    name = model.get("name") if isinstance(model, dict) else None
    return EventLabels(_label(document.get("service")), _label(name))


def of_wire(value: bytes) -> EventLabels:
    """The labels of an encoded event (read back from the spool), from its first bytes."""
    try:
        document = from_json(value[:WIRE_PREFIX_BYTES], allow_partial=True)
    except ValueError:
        return UNKNOWN
    return of_document(document) if isinstance(document, dict) else UNKNOWN


def _label(value: object) -> str:
    return value[:MAX_LABEL_CHARS] if isinstance(value, str) and value else NONE


class LabelCap:
    """Admits the first ``limit`` (service, model) pairs it is shown; folds the rest. One per
    agent, shared by all its counters, so that a model is folded alike in every one."""

    def __init__(self, limit: int = MAX_PAIRS) -> None:
        self._limit = limit
        self._kept: set[EventLabels] = set()
        self._services: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, labels: EventLabels) -> EventLabels:
        if labels in self._kept:  # the common case, without the lock
            return labels
        with self._lock:
            if labels in self._kept:
                return labels
            if len(self._kept) < self._limit:
                self._kept.add(labels)
                self._services.add(labels.service)
                return labels
            known = labels.service in self._services
        return EventLabels(labels.service if known else OTHER, OTHER)


class LabelledCounts:
    """Event counts by capped labels, safe to add to from any thread."""

    def __init__(self, cap: LabelCap) -> None:
        self._cap = cap
        self._counts: Counter[EventLabels] = Counter()
        self._lock = threading.Lock()

    def add(self, labels: EventLabels, count: int = 1) -> None:
        labels = self._cap(labels)
        with self._lock:
            self._counts[labels] += count

    def add_all(self, labels: Iterable[EventLabels]) -> None:
        """Count one event per item."""
        counted = Counter(self._cap(each) for each in labels)
        if counted:
            with self._lock:
                self._counts.update(counted)

    def items(self) -> list[tuple[EventLabels, int]]:
        with self._lock:
            return list(self._counts.items())

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self._counts.values())
