"""Keeping an Alertmanager's alerts true, as Prometheus does: every ``resend_interval``, each
alert its receiver was told fires is posted again with an ``endsAt`` four intervals ahead, and
one that has resolved since is posted with the time it ended.

Without this, Alertmanager ends an alert posted once after its ``resolve_timeout`` (5 minutes)
while the drift is still open, and keeps one that ended until the group's next notification.
If the router stops, its alerts end four intervals later: a silent router does not leave
stale pages behind.

Refreshes do not go through the outbox: one that is lost is replaced by the next, an interval
later, and recording each in the ledger would say nothing new. Each is posted on a thread of
its own, one at a time per Alertmanager, so a slow or dead one holds up neither the router
nor the others; a failure is logged. A refresh that was under way when the outbox sent an
alert's resolve can land after it and open the alert again; so an alert posted as firing
that its receiver is no longer told fires (resolved, or muted since) is posted once more as
ended, at the next interval.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime

import httpx
import structlog

from driftline.collector.alerting.alerts import Alert
from driftline.collector.alerting.config import AlertingConfig
from driftline.collector.alerting.receivers import postable

log = structlog.get_logger(__name__)

LEAD = 4  # intervals ahead that a refreshed alert ends, as Prometheus sets its endsAt


class AlertmanagerRefresher:
    def __init__(self, config: AlertingConfig, client: httpx.Client) -> None:
        self._config = config
        self._client = client
        self._posted_at: dict[tuple[str, int], datetime] = {}
        self._firing: dict[tuple[str, int], dict[str, Alert]] = {}  # posted as firing, last
        self._posting: dict[tuple[str, int], Future[None]] = {}
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="alert-refresh")

    def refresh(self, told: Mapping[str, Sequence[Alert]], now: datetime) -> int:
        """Post, to each Alertmanager whose interval has passed, the alerts its receiver was
        told fire (``Grouper.told_firing``), in their state now; how many posts started."""
        started = 0
        for receiver in self._config.receivers:
            alerts = told.get(receiver.name, ())
            for index, manager in enumerate(receiver.alertmanager_configs):
                key = (receiver.name, index)
                last = self._posted_at.get(key)
                busy = key in self._posting and not self._posting[key].done()
                if busy or (last is not None and now - last < manager.resend_interval):
                    continue
                kept = [a for a in alerts if manager.send_resolved or not a.resolved]
                kept_now = {alert.fingerprint for alert in kept}
                ended = [
                    replace(alert, ends_at=now)
                    for fingerprint, alert in self._firing.get(key, {}).items()
                    if fingerprint not in kept_now
                ]
                self._firing[key] = {a.fingerprint: a for a in kept if not a.resolved}
                if not kept and not ended:
                    continue
                self._posted_at[key] = now
                until = now + LEAD * manager.resend_interval
                body = [postable(alert, fresh_until=until) for alert in [*kept, *ended]]
                url = f"{manager.url.rstrip('/')}/api/v2/alerts"
                self._posting[key] = self._pool.submit(self._post, receiver.name, url, body)
                started += 1
        return started

    def wait(self) -> None:
        """Until the posts started have ended (for tests and shutdown)."""
        for future in list(self._posting.values()):
            future.result()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _post(self, receiver: str, url: str, body: list[dict[str, object]]) -> None:
        try:
            self._client.post(url, json=body).raise_for_status()
        except httpx.HTTPError as error:  # the next interval posts them again
            log.warning(
                "alert refresh not taken", receiver=receiver, alerts=len(body), error=str(error)
            )
