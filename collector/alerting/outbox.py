"""The durable outbox: a notification is stored before it is sent and marked sent only when
its receiver accepts it (a 2xx answer), so pending notifications survive a restart.

Failures are retried with exponential backoff and full jitter; a 429 or 503 with
``Retry-After`` is waited out at least that long. Other 4xx answers will not get better by
retrying: the message is marked failed with the answer. A crash between a receiver's 2xx and
the mark sends that one message again; PagerDuty absorbs it through the group's ``dedup_key``.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

import httpx
import structlog
from sqlalchemy import Engine
from sqlmodel import Session, col, func, select

from driftline.collector.alerting import metrics
from driftline.collector.alerting.config import Receiver
from driftline.collector.alerting.grouping import Notification
from driftline.collector.alerting.receivers import common_labels, messages
from driftline.collector.store.models import OutboxMessage

log = structlog.get_logger(__name__)

PENDING, SENT, FAILED = "pending", "sent", "failed"
RETRYABLE = {408, 425, 429, 500, 502, 503, 504}


def enqueue(
    session: Session,
    notification: Notification,
    receiver: Receiver,
    external_url: str,
    now: datetime,
) -> list[OutboxMessage]:
    """Store one message per integration of the receiver; the caller commits."""
    stored = []
    for message in messages(notification, receiver, external_url):
        row = OutboxMessage(
            id=uuid.uuid4(),
            created_at=now,
            receiver=notification.receiver,
            integration=message.integration,
            group_key=notification.group_key,
            status=notification.status,
            fingerprints=[alert.fingerprint for alert in notification.alerts],
            common_labels=common_labels([alert.labels for alert in notification.alerts]),
            url=message.url,
            body=message.body,
            state=PENDING,
            next_attempt_at=now,
        )
        session.add(row)
        stored.append(row)
    return stored


class OutboxSender:
    def __init__(
        self,
        engine: Engine,
        client: httpx.Client,
        *,
        first_delay: timedelta = timedelta(seconds=1),
        longest_delay: timedelta = timedelta(minutes=5),
        rng: random.Random | None = None,
    ) -> None:
        self._engine = engine
        self._client = client
        self._first_delay = first_delay
        self._longest_delay = longest_delay
        self._rng = rng or random.Random()

    def send_due(self, now: datetime, limit: int = 100) -> Sequence[OutboxMessage]:
        """Try every pending message that is due; the ones accepted this round."""
        accepted = []
        with Session(self._engine, expire_on_commit=False) as session:
            due = session.exec(
                select(OutboxMessage)
                .where(OutboxMessage.state == PENDING, col(OutboxMessage.next_attempt_at) <= now)
                .order_by(col(OutboxMessage.created_at))
                .limit(limit)
            ).all()
            for message in due:
                if self._attempt(message, now):
                    accepted.append(message)
                session.add(message)
                session.commit()  # one at a time: a crash resends at most one message
            pending = select(func.count()).where(OutboxMessage.state == PENDING)
            metrics.OUTBOX_PENDING.set(session.exec(pending).one())
        return accepted

    def _attempt(self, message: OutboxMessage, now: datetime) -> bool:
        message.attempts += 1
        try:
            response = self._client.post(message.url, json=message.body)
        except httpx.HTTPError as error:
            self._retry(message, now, f"{type(error).__name__}: {error}", None)
            return False
        if response.is_success:
            message.state, message.sent_at, message.last_error = SENT, now, None
            metrics.SENDS.labels(message.receiver, message.integration, "sent").inc()
            metrics.DELIVERY_SECONDS.observe(max(0.0, (now - message.created_at).total_seconds()))
            log.info(
                "notification sent",
                receiver=message.receiver,
                integration=message.integration,
                status=message.status,
                attempts=message.attempts,
            )
            return True
        reason = f"HTTP {response.status_code}: {response.text[:500]}"
        if response.status_code in RETRYABLE:
            self._retry(message, now, reason, _retry_after(response, now))
        else:
            message.state, message.last_error = FAILED, reason
            metrics.SENDS.labels(message.receiver, message.integration, "failed").inc()
            log.error(
                "notification refused; not retrying",
                receiver=message.receiver,
                integration=message.integration,
                reason=reason,
            )
        return False

    def _retry(
        self, message: OutboxMessage, now: datetime, reason: str, at_least: timedelta | None
    ) -> None:
        ceiling = min(self._first_delay * 2 ** (message.attempts - 1), self._longest_delay)
        delay = ceiling * self._rng.random()  # full jitter
        if at_least is not None:
            delay = max(delay, at_least)
        message.next_attempt_at, message.last_error = now + delay, reason
        metrics.SENDS.labels(message.receiver, message.integration, "retry").inc()
        log.warning(
            "notification not accepted; will retry",
            receiver=message.receiver,
            integration=message.integration,
            reason=reason,
            retry_in_s=round(delay.total_seconds(), 3),
        )


def _retry_after(response: httpx.Response, now: datetime) -> timedelta | None:
    """``Retry-After`` as seconds or as an HTTP date; None if absent or unreadable."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    if value.strip().isdigit():
        return timedelta(seconds=int(value))
    try:
        return max(parsedate_to_datetime(value) - now, timedelta(0))
    except (TypeError, ValueError):
        return None
