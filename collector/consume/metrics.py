"""The collector's own metrics, served at its probe port's ``/metrics``
(``driftline.collector.core.health``): how far behind the topic it is, what it stored and kept
as dead letters, and how long batches and commits take."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from driftline.collector.consume.ingest import BatchOutcome

LAG = Gauge(
    "driftline_collector_consumer_lag_messages",
    "Messages between the collector's position and the end of each partition it holds.",
    ["topic", "partition"],
)
STORED = Counter("driftline_collector_events_stored_total", "Events stored in the ledger.")
DUPLICATES = Counter(
    "driftline_collector_duplicates_total", "Identical copies of stored events, absorbed."
)
DEAD_LETTERS = Counter(
    "driftline_collector_dead_letters_total",
    "Messages kept as dead letters, by reason: undecodable (no event of the contract), "
    "unproven (a component's event no trusted key signed), conflict (a stored event's id with "
    "other content), refused (by the database).",
    ["reason"],
)
CLOCK_SKEWED = Counter(
    "driftline_collector_clock_skewed_total", "Events stored dated far from the collector's clock."
)
BATCH_SECONDS = Histogram(
    "driftline_collector_batch_seconds", "Time to store one batch in the ledger and read models."
)
COMMIT_SECONDS = Histogram(
    "driftline_collector_commit_seconds", "Time to commit a stored batch's offsets to Kafka."
)
BATCH_FAILURES = Counter(
    "driftline_collector_batch_failures_total", "Batches the database failed, read again."
)
COMMIT_FAILURES = Counter(
    "driftline_collector_commit_failures_total", "Offset commits Kafka did not take."
)
for reason in ("undecodable", "unproven", "conflict", "refused"):
    DEAD_LETTERS.labels(reason)  # each at 0 from the start, so that a rate is defined


def count(outcome: BatchOutcome) -> None:
    STORED.inc(outcome.stored)
    DUPLICATES.inc(outcome.duplicates)
    CLOCK_SKEWED.inc(outcome.clock_skewed)
    undecodable = outcome.dead_letters - outcome.conflicts - outcome.unproven - outcome.refused
    for reason, letters in (
        ("undecodable", undecodable), ("unproven", outcome.unproven),
        ("conflict", outcome.conflicts), ("refused", outcome.refused),
    ):  # fmt: skip
        DEAD_LETTERS.labels(reason).inc(letters)


def count_lag(lag: dict[tuple[str, int], int]) -> None:
    for (topic, partition), behind in lag.items():
        LAG.labels(topic, str(partition)).set(behind)
