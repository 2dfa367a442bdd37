"""Refreshing an Alertmanager's alerts, against HTTP servers on loopback standing in for it (the
real one is in tests/integration/test_alertmanager.py): what is posted again and with which
``endsAt``, only what the receiver was told, and a slow, dead or failing Alertmanager holds up
neither the router nor another one."""

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import httpx
import structlog

from driftline.collector.alerting.alerts import Alert
from driftline.collector.alerting.config import (
    AlertingConfig,
    AlertmanagerConfig,
    Receiver,
    Route,
)
from driftline.collector.alerting.grouping import Grouper
from driftline.collector.alerting.refresh import LEAD, AlertmanagerRefresher
from tests.http_recorder import recording_server
from tests.waiting import wait_for

T0 = datetime(2026, 12, 1, 9, tzinfo=UTC)
SECOND = timedelta(seconds=1)


def _config(*urls: str, group_wait: str = "0s") -> AlertingConfig:
    receivers = [
        Receiver(
            name=f"am{n}", alertmanager_configs=[AlertmanagerConfig(url=url, resend_interval="1s")]
        )
        for n, url in enumerate(urls)
    ]
    routes = [Route.model_validate({"receiver": r.name, "continue": True}) for r in receivers]
    root = Route(receiver="am0", group_wait=group_wait, group_interval="5m", routes=routes)
    return AlertingConfig(route=root, receivers=receivers)


def _alert(feature: str, ends_at: datetime | None = None) -> Alert:
    return Alert({"alertname": "DriftDetected", "feature": feature}, {}, T0, ends_at)


@contextmanager
def hanging_server() -> Iterator[str]:
    """Takes connections and never answers: a dead Alertmanager behind a live port."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        held: list[socket.socket] = []
        stop = threading.Event()

        def accept() -> None:
            listener.settimeout(0.2)
            while not stop.is_set():
                try:
                    held.append(listener.accept()[0])
                except TimeoutError:
                    continue

        thread = threading.Thread(target=accept, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{listener.getsockname()[1]}"
        finally:
            stop.set()
            thread.join()
            for connection in held:
                connection.close()


def test_told_alerts_are_posted_again_each_interval_with_ends_at_ahead_and_resolves_as_ended() -> (
    None
):
    with recording_server() as manager, httpx.Client(timeout=5) as client:
        config = _config(manager.url)
        grouper, refresher = Grouper(config), AlertmanagerRefresher(config, client)
        grouper.add(_alert("age"), T0)
        grouper.add(_alert("income"), T0)
        assert refresher.refresh(grouper.told_firing(), T0) == 0  # not notified yet
        assert len(grouper.due(T0)) == 1
        assert refresher.refresh(grouper.told_firing(), T0) == 1
        refresher.wait()
        assert refresher.refresh(grouper.told_firing(), T0 + SECOND / 2) == 0  # within interval
        grouper.add(_alert("income", ends_at=T0 + SECOND), T0 + SECOND)
        assert refresher.refresh(grouper.told_firing(), T0 + SECOND) == 1
        refresher.wait()
        first, second = manager.accepted()
        assert [a["endsAt"] for a in first] == [f"2026-12-01T09:00:0{LEAD}.000000Z"] * 2
        ends = {a["labels"]["feature"]: a["endsAt"] for a in second}
        assert ends == {"age": f"2026-12-01T09:00:0{LEAD + 1}.000000Z",
                        "income": "2026-12-01T09:00:01.000000Z"}  # fmt: skip
        refresher.close()


def test_what_the_receiver_was_not_told_is_not_refreshed() -> None:
    """An alert muted at its notification, or waiting out group_wait, reaches Alertmanager
    through no refresh either."""
    with recording_server() as manager, httpx.Client(timeout=5) as client:
        config = _config(manager.url, group_wait="30s")
        grouper, refresher = Grouper(config), AlertmanagerRefresher(config, client)
        grouper.add(_alert("silenced"), T0)
        assert grouper.due(T0 + 31 * SECOND, lambda notification: None) == []  # all muted
        grouper.add(_alert("new"), T0 + 31 * SECOND)
        assert grouper.told_firing() == {}
        assert refresher.refresh(grouper.told_firing(), T0 + 32 * SECOND) == 0
        refresher.close()
    assert manager.requests == []


def test_a_dead_slow_or_failing_alertmanager_holds_up_neither_the_router_nor_another() -> None:
    with (
        hanging_server() as dead,
        recording_server([(500, {})]) as failing,
        recording_server() as healthy,
        httpx.Client(timeout=1) as client,
    ):
        config = _config(dead, failing.url, healthy.url)
        grouper, refresher = Grouper(config), AlertmanagerRefresher(config, client)
        grouper.add(_alert("age"), T0)
        assert len(grouper.due(T0)) == 3
        with structlog.testing.capture_logs() as logs:
            started = time.monotonic()
            assert refresher.refresh(grouper.told_firing(), T0) == 3
            assert time.monotonic() - started < 0.5  # posted on threads of their own
            wait_for(healthy.accepted, lambda got: len(got) == 1, what="the healthy refresh")
            # An interval on, the dead one's post is still under way: not started twice.
            assert refresher.refresh(grouper.told_firing(), T0 + SECOND) == 2
            refresher.wait()
        assert len(healthy.accepted()) == 2 and len(failing.accepted()) == 1  # 500, then taken
        failed = [e["receiver"] for e in logs if e["event"] == "alert refresh not taken"]
        assert sorted(failed) == ["am0", "am1"]
        refresher.close()


def test_an_alert_posted_as_firing_that_is_told_no_more_is_posted_once_as_ended() -> None:
    """A refresh under way when the resolve went out can land after it, opening the alert
    again; a muted one would stay open until its endsAt. Either is posted as ended once."""
    with recording_server() as manager, httpx.Client(timeout=5) as client:
        config = _config(manager.url)
        grouper, refresher = Grouper(config), AlertmanagerRefresher(config, client)
        grouper.add(_alert("age"), T0)
        assert len(grouper.due(T0)) == 1
        assert refresher.refresh(grouper.told_firing(), T0) == 1
        refresher.wait()
        grouper.due(T0 + 6 * 60 * SECOND, lambda notification: None)  # muted from now on
        assert grouper.told_firing() == {}
        assert refresher.refresh(grouper.told_firing(), T0 + 7 * 60 * SECOND) == 1
        refresher.wait()
        assert refresher.refresh(grouper.told_firing(), T0 + 8 * 60 * SECOND) == 0  # once
        refresher.close()
    _, ended = manager.accepted()
    assert [(a["labels"]["feature"], a["endsAt"]) for a in ended] == [
        ("age", "2026-12-01T09:07:00.000000Z")
    ]
