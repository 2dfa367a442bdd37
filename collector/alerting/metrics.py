"""The alert router's own metrics, served at its probe port's ``/metrics``: what waits in the
outbox, what each receiver was sent and how that went, and how long a notification took from
being due to being taken."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

OUTBOX_PENDING = Gauge(
    "driftline_router_outbox_pending_messages", "Notifications waiting in the outbox to be sent."
)
SENDS = Counter(
    "driftline_router_sends_total",
    "Attempts to send a notification, by receiver, integration and result: sent (a 2xx), "
    "retry (to be tried again) or failed (refused for good).",
    ["receiver", "integration", "result"],
)
DELIVERY_SECONDS = Histogram(
    "driftline_router_delivery_seconds",
    "From a notification being due (stored in the outbox) to its receiver taking it.",
    buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
)
