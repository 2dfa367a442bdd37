"""The alert router: drift verdicts from Kafka (its own consumer group) become alerts, grouped
and routed by the alerting file, muted by silences and inhibitions, stored in the outbox and
sent. Each notification a receiver accepts is recorded as an ``alert_notified`` event, so the
trail shows who was told what and when. An Alertmanager is also sent the alerts it was told
fire again, every ``resend_interval`` (``refresh.py``), so that they stay true there.

When the router starts, the alerts still firing come back from the ledger and what each receiver
was last sent from the notification log, written with the outbox in one transaction: a restart
keeps reminding (``repeat_interval``) and resolving, and notifies nothing twice.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx
import structlog
from confluent_kafka import Message
from pydantic import ValidationError
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, select

from driftline.agent import Driftline
from driftline.agent.contract import (
    AlertNotifiedPayload,
    ContractError,
    DriftDetectedEvent,
    DriftResolvedEvent,
    ModelRef,
    decode,
)
from driftline.agent.provenance import TrustedProducers
from driftline.collector.alerting.alerts import Alert, alert_for, owner_for
from driftline.collector.alerting.config import AlertingConfig
from driftline.collector.alerting.grouping import Grouper, Notification
from driftline.collector.alerting.muting import UnreadableSilence, active_silences, mute
from driftline.collector.alerting.outbox import OutboxSender, enqueue
from driftline.collector.alerting.refresh import AlertmanagerRefresher
from driftline.collector.consume.kafka import GroupConsumer, KafkaUnavailable, event_type
from driftline.collector.core.health import Heartbeat, first_line
from driftline.collector.core.leadership import Leadership
from driftline.collector.core.settings import CollectorSettings
from driftline.collector.store.models import (
    Decision,
    LedgerEntry,
    NotificationLogEntry,
    OutboxMessage,
)

log = structlog.get_logger(__name__)

ROUTER_SERVICE = "driftline-router"
ROUTER_BATCH = 500
# What the router takes; None: a message from an agent older than the event-type header.
VERDICT_TYPES = frozenset({"drift_detected", "drift_resolved", None})
LEADERSHIP_CHECK_S = 5.0
DATABASE_RETRY_S = 2.0  # between tries of a database that failed
UNLEDGERED_PRUNE_S = 30.0
UNKNOWN_SERVICE = "unknown"  # a verdict's service before any decision of its version is stored
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class AlertRouter:
    def __init__(
        self,
        *,
        engine: Engine,
        config: AlertingConfig,
        agent: Driftline,
        client: httpx.Client,
        external_url: str,
        producers: TrustedProducers,
        fallbacks: Mapping[str, Mapping[str, str]] | None = None,
        clock: Clock = utc_now,
    ) -> None:
        """``fallbacks``: per model, per input, its source's fallback, shown on alerts."""
        self._engine = engine
        self._producers = producers  # a verdict none of them signed pages nobody
        self._config = config
        self._agent = agent
        self._external_url = external_url
        self._fallbacks = fallbacks or {}
        self._clock = clock
        self._grouper = Grouper(config)
        self._sender = OutboxSender(engine, client)
        self._refresher = AlertmanagerRefresher(config, client)
        self._unreadable: dict[uuid.UUID, str] = {}
        self._services: dict[tuple[str, str], str] = {}
        self._earlier_labels: set[str] = set()  # fingerprints receivers were told fire
        # Verdicts taken from Kafka that the ledger may not hold yet (the collector stores them
        # apart): a new term, after a database error, takes them again, as their offsets are
        # committed and the ledger alone would forget them.
        self._unledgered: dict[uuid.UUID, DriftDetectedEvent | DriftResolvedEvent] = {}
        self._next_prune = 0.0
        self.consuming = threading.Event()  # set once Kafka has assigned it partitions

    @property
    def unreadable_silences(self) -> dict[uuid.UUID, str]:
        """The active silences whose matchers do not parse (so they mute nothing), each with
        the reason, as of the last tick."""
        return dict(self._unreadable)

    def take(self, event: DriftDetectedEvent | DriftResolvedEvent) -> Alert:
        self._unledgered[event.event_id] = event
        alert = self._alert(event)
        self._grouper.add(alert, self._clock())
        return alert

    def _alert(self, event: DriftDetectedEvent | DriftResolvedEvent) -> Alert:
        service = self._service_of(event.model.name, event.payload.version)
        alert = alert_for(event, self._config, self._external_url, service, self._fallbacks)
        if alert.fingerprint not in self._earlier_labels:
            earlier = alert_for(
                event, self._config, self._external_url, event.service, self._fallbacks
            )
            if earlier.fingerprint in self._earlier_labels:
                return earlier
        return alert

    def _service_of(self, model: str, version: str) -> str:
        """The AI service whose decisions a verdict is about: that of the version's first
        decision in the ledger (by when it was recorded, not by its own time, which a late
        decision can put first), which never changes, so that a resolve, after a restart
        too, carries the labels its alert had; ``unknown`` while none is stored."""
        if (found := self._services.get((model, version))) is not None:
            return found
        with Session(self._engine) as session:
            service = session.exec(
                select(Decision.service)
                .join(LedgerEntry, col(LedgerEntry.event_id) == col(Decision.event_id))
                .where(Decision.model_name == model, Decision.model_version == version)
                .order_by(
                    col(LedgerEntry.recorded_at),
                    col(LedgerEntry.topic),
                    col(LedgerEntry.partition),
                    col(LedgerEntry.seq),
                )
                .limit(1)
            ).first()
        if service is None:
            return UNKNOWN_SERVICE
        self._services[(model, version)] = service
        return service

    def unowned_models(self) -> list[str]:
        """Models with decisions in the store that no owner entry matches."""
        with Session(self._engine) as session:
            models = session.exec(select(Decision.model_name).distinct()).all()
        return sorted(m for m in models if owner_for(self._config, {"model": m}) is None)

    def restore(self) -> int:
        """Take up the alerts the ledger says are firing, and those that resolved after a
        receiver was told they fire, with what each receiver was last sent (the notification
        log): a restart neither repeats a notification nor forgets a resolve. How many fire."""
        with Session(self._engine) as session:
            stored = session.exec(
                select(LedgerEntry.event_bytes)
                .where(col(LedgerEntry.event_type).in_(("drift_detected", "drift_resolved")))
                .order_by(col(LedgerEntry.recorded_at))
            ).all()
            log_entries = session.exec(select(NotificationLogEntry)).all()
        told_firing = {fp for entry in log_entries for fp in entry.firing}
        # Receivers told of an alert under its labels from before `service` named the AI
        # service (the detector's name) keep hearing of it under those, to its resolve.
        self._earlier_labels = told_firing
        events: list[DriftDetectedEvent | DriftResolvedEvent] = []
        for raw in stored:
            event = decode(raw)
            assert isinstance(event, DriftDetectedEvent | DriftResolvedEvent)
            events.append(event)
        ledgered = {event.event_id for event in events}
        self._unledgered = {k: v for k, v in self._unledgered.items() if k not in ledgered}
        events += sorted(self._unledgered.values(), key=lambda event: event.occurred_at)
        latest: dict[str, Alert] = {}
        for event in events:
            alert = self._alert(event)
            latest[alert.fingerprint] = alert
        now = self._clock()
        for alert in latest.values():
            if not alert.resolved or alert.fingerprint in told_firing:
                self._grouper.add(alert, now)
        for entry in log_entries:
            self._grouper.remember(entry.receiver, entry.group_key, entry.firing, entry.notified_at)
        return sum(not alert.resolved for alert in latest.values())

    def tick(self) -> list[OutboxMessage]:
        """Store what is due for notification, send what is due for sending; what was sent."""
        self._prune_unledgered()
        now = self._clock()
        with Session(self._engine) as session:
            silences = active_silences(session, now)
            self._report(silences.unreadable)
            firing = list(self._grouper.firing().values())

            def muted(notification: Notification) -> Notification | None:
                return mute(notification, silences.silences, firing, self._config.inhibit_rules)

            for notification in self._grouper.due(now, muted):
                receiver = self._config.receiver(notification.receiver)
                enqueue(session, notification, receiver, self._external_url, now)
                session.merge(_log_entry(notification, now))
            session.commit()
        sent = list(self._sender.send_due(now))
        for message in sent:
            self._record(message)
        self._refresher.refresh(self._grouper.told_firing(), now)
        return sent

    def _prune_unledgered(self) -> None:
        """Forget, every half minute, the verdicts taken that the ledger holds by now."""
        if not self._unledgered or time.monotonic() < self._next_prune:
            return
        self._next_prune = time.monotonic() + UNLEDGERED_PRUNE_S
        ids = list(self._unledgered)
        with Session(self._engine) as session:
            for start in range(0, len(ids), 500):  # SQLite's bound on parameters
                chunk = ids[start : start + 500]
                for event_id in session.exec(
                    select(LedgerEntry.event_id).where(col(LedgerEntry.event_id).in_(chunk))
                ).all():
                    self._unledgered.pop(event_id, None)

    def close(self) -> None:
        """Wait for the refreshes under way."""
        self._refresher.close()

    def _report(self, unreadable: list[UnreadableSilence]) -> None:
        """Log each silence that cannot be read when it is first found, not on every tick."""
        for silence in unreadable:
            if silence.id not in self._unreadable:
                log.error(
                    "silence cannot be read; it mutes nothing until replaced",
                    silence_id=str(silence.id),
                    reason=silence.reason,
                )
        self._unreadable = {silence.id: silence.reason for silence in unreadable}

    def run(
        self,
        stop: threading.Event,
        settings: CollectorSettings,
        bootstrap_servers: str,
        heartbeat: Heartbeat | None = None,
    ) -> None:
        """Consume and notify until ``stop`` is set, while this router leads: with two, both
        would send the same outbox and restore the same alerts. A router that loses the lead
        (its database session ended) stops sending and stands by."""
        leadership = Leadership(self._engine, ROUTER_SERVICE)
        try:
            while not stop.is_set():
                if heartbeat is not None:
                    heartbeat.beat()
                try:
                    leading = leadership.hold()
                    if heartbeat is not None:  # the database answered
                        heartbeat.clear("database")
                    if leading:
                        self._consume_while_leading(
                            stop, leadership, settings, bootstrap_servers, heartbeat
                        )
                    else:
                        log.info("another alert router is active; standing by")
                        stop.wait(5)
                except SQLAlchemyError as error:
                    # A database that is away stops no router: it says so in its health, and
                    # starts a new term from the store once it answers, with the verdicts it
                    # took that the ledger lacks yet; what it had not committed is read
                    # again, and the grouper takes a verdict twice as once.
                    problem = first_line(error)
                    if heartbeat is not None:
                        heartbeat.fault("database", problem)
                    log.error("alert router's database failed; starting again", error=problem)
                    stop.wait(DATABASE_RETRY_S)
        finally:
            leadership.release()
            self.close()

    def _consume_while_leading(
        self,
        stop: threading.Event,
        leadership: Leadership,
        settings: CollectorSettings,
        bootstrap_servers: str,
        heartbeat: Heartbeat | None,
    ) -> None:
        self._grouper = Grouper(self._config)  # a new term starts from the store, not memory
        restored = self.restore()
        for model in self.unowned_models():
            log.warning(
                "model has no owner in the alerting file; its alerts say unowned", model=model
            )

        # A broker that is away is waited for, as the collector does: under `driftline up` a
        # router that gave up would stop the whole stack. Meanwhile it keeps notifying and
        # refreshing what it restored: an Alertmanager would otherwise end those alerts.
        def waiting() -> None:
            if heartbeat is not None:
                heartbeat.beat()
            self.tick()
            if heartbeat is not None:
                heartbeat.clear("database")

        consumer = GroupConsumer.connect(
            stop,
            waiting,
            bootstrap_servers=bootstrap_servers,
            topic=settings.topic,
            group_id=settings.router_group,
            client_id=ROUTER_SERVICE,
            offset_reset="latest",  # what came before is in the ledger, restored above
            max_poll_interval_ms=settings.max_poll_interval_ms,
            session_timeout_ms=settings.session_timeout_ms,
            security=settings.librdkafka_security(),
        )
        if consumer is None:
            return
        log.info(
            "alert router consuming",
            topic=settings.topic,
            group=settings.router_group,
            firing=restored,
        )
        next_check = time.monotonic() + LEADERSHIP_CHECK_S
        try:
            while not stop.is_set():
                if heartbeat is not None:
                    heartbeat.beat()
                if time.monotonic() >= next_check:
                    if not leadership.still_held():
                        log.warning("alert router lost the lead; standing by")
                        return
                    next_check = time.monotonic() + LEADERSHIP_CHECK_S
                batch = consumer.poll(ROUTER_BATCH, timeout_s=0.25)
                for message in batch.messages:
                    self._consume(message)
                if not self.consuming.is_set() and consumer.partitions:
                    log.info("alert router assigned its partitions")
                    self.consuming.set()
                try:
                    consumer.commit(batch)
                except KafkaUnavailable as error:  # read again, it makes the same alerts
                    log.warning("alert router's offset commit failed", error=str(error))
                self.tick()
                if heartbeat is not None:
                    heartbeat.clear("database")
        finally:
            consumer.close()

    def _consume(self, message: Message[Any, Any]) -> None:
        if event_type(message) not in VERDICT_TYPES:  # a decision, a review...: not decoded
            return
        try:
            event = decode(message.value() or b"")
        except ContractError:
            return  # the collector keeps it as a dead letter
        if not isinstance(event, DriftDetectedEvent | DriftResolvedEvent):
            return
        refusal = self._producers.refusal(event)
        if refusal is not None:  # the collector keeps it as a dead letter, as a forgery
            log.warning("verdict not routed", event_id=str(event.event_id), reason=refusal)
            return
        self.take(event)

    def _record(self, message: OutboxMessage) -> None:
        """Record that a receiver took the notification. One the contract cannot carry is
        logged, saying why, and never stops the router: it was delivered all the same."""
        labels = message.common_labels
        try:
            payload = AlertNotifiedPayload(
                notification_id=message.id,
                receiver=message.receiver,
                integration=message.integration,
                group_key=message.group_key,
                status=message.status,
                fingerprints=message.fingerprints,
                attempts=message.attempts,
            )
            model = ModelRef(name=labels.get("model", "*"), version=labels.get("version", "*"))
            self._agent.record_component("alert_notified", payload, model=model)
        except ValidationError as error:
            log.error(
                "alert_notified not recorded", notification_id=str(message.id), problem=str(error)
            )


def _log_entry(notification: Notification, now: datetime) -> NotificationLogEntry:
    return NotificationLogEntry(
        receiver=notification.receiver,
        group_key=notification.group_key,
        firing=[a.fingerprint for a in notification.alerts if not a.resolved],
        resolved=[a.fingerprint for a in notification.alerts if a.resolved],
        notified_at=now,
    )
