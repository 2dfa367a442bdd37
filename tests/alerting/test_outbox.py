"""Notifications are stored before they are sent and go out exactly once when the receiver
takes them: retried with backoff through 503s, waiting out a 429's Retry-After, across a
restart of the sender; a receiver that refuses outright is not retried. Real HTTP servers on
loopback stand in for the receivers; SQLite and PostgreSQL hold the outbox."""

import itertools
import random
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import Engine
from sqlmodel import Session, select

from driftline.collector.alerting.alerts import Alert
from driftline.collector.alerting.config import Receiver, WebhookConfig
from driftline.collector.alerting.grouping import Notification
from driftline.collector.alerting.outbox import FAILED, SENT, OutboxSender, enqueue
from driftline.collector.store.models import OutboxMessage
from tests.http_recorder import recording_server

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
ALERT = Alert({"alertname": "DriftDetected", "model": "m"}, {"summary": "m drifted"}, T0)


def notify(engine: Engine, url: str) -> None:
    receiver = Receiver(name="team", webhook_configs=[WebhookConfig(url=url)])
    notification = Notification("team", '{}:{model="m"}', {"model": "m"}, (ALERT,))
    with Session(engine) as session:
        enqueue(session, notification, receiver, "http://driftline.example", T0)
        session.commit()


def sender(engine: Engine, client: httpx.Client) -> OutboxSender:
    return OutboxSender(engine, client, rng=random.Random(1))


def test_a_receiver_that_is_down_gets_it_once_when_back_even_across_a_restart(
    engine: Engine,
) -> None:
    script = [(503, {}), (503, {}), (429, {"Retry-After": "120"}), (200, {})]
    with recording_server(script) as receiver, httpx.Client(timeout=5) as client:
        notify(engine, f"{receiver.url}/hook")
        attempts_at = []
        now, current = T0, sender(engine, client)
        while now < T0 + timedelta(minutes=10):
            before = len(receiver.requests)
            current.send_due(now)
            if len(receiver.requests) > before:
                attempts_at.append(now)
                current = sender(engine, client)  # a restart after every attempt
            now += timedelta(seconds=1)

        assert [status for _, _, status in receiver.requests] == [503, 503, 429, 200]
        assert len(receiver.accepted()) == 1
        assert attempts_at[3] - attempts_at[2] >= timedelta(seconds=120)  # Retry-After held
        with Session(engine) as session:
            (stored,) = session.exec(select(OutboxMessage)).all()
        assert stored.state == SENT and stored.attempts == 4 and stored.last_error is None


def test_a_receiver_that_refuses_is_not_retried(engine: Engine) -> None:
    with recording_server([(400, {})]) as receiver, httpx.Client(timeout=5) as client:
        notify(engine, f"{receiver.url}/hook")
        outbox = sender(engine, client)
        for minute in range(30):
            outbox.send_due(T0 + timedelta(minutes=minute))
        assert len(receiver.requests) == 1
    with Session(engine) as session:
        (stored,) = session.exec(select(OutboxMessage)).all()
    assert stored.state == FAILED and stored.last_error is not None
    assert stored.last_error.startswith("HTTP 400")


def test_an_unreachable_receiver_is_retried_with_growing_delays(engine: Engine) -> None:
    notify(engine, "http://127.0.0.1:9/hook")  # the discard port: connection refused
    with httpx.Client(timeout=1) as client:
        outbox = sender(engine, client)
        tried = []
        for second in range(0, 120):
            now = T0 + timedelta(seconds=second)
            with Session(engine) as session:
                before = session.exec(select(OutboxMessage)).one().attempts
            outbox.send_due(now)
            with Session(engine) as session:
                if session.exec(select(OutboxMessage)).one().attempts > before:
                    tried.append(second)
    gaps = [b - a for a, b in itertools.pairwise(tried)]
    assert 4 <= len(tried) <= 12  # full jitter under a doubling ceiling, not every second
    assert max(gaps) >= 8
