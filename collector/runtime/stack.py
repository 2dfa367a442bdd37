"""The whole system in one process: broker (embedded unless one is given), collector, detector
worker, API, and the alert router when an alerting file is configured.

``driftline up`` runs it in the foreground; ``driftline demo`` runs it around a simulation.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import structlog
import uvicorn
from sqlalchemy import Engine
from sqlmodel import Session

from driftline.agent import Driftline
from driftline.collector.alerting.config import AlertingConfig
from driftline.collector.audit.access import create_token, free_name, has_admin
from driftline.collector.audit.integrity import KeyRing
from driftline.collector.consume.kafka import ensure_topic
from driftline.collector.core.producer_keys import producer_key
from driftline.collector.core.settings import CollectorSettings
from driftline.collector.runtime import services
from driftline.collector.runtime.broker import EmbeddedBroker
from driftline.collector.store.database import make_engine, migrate

log = structlog.get_logger(__name__)


class Stack:
    def __init__(self, settings: CollectorSettings) -> None:
        self.settings = settings
        self.broker: EmbeddedBroker | None = None
        self.engine: Engine | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._server: uvicorn.Server | None = None
        self._detector_agent: Driftline | None = None
        self._router_agent: Driftline | None = None
        self._http: httpx.Client | None = None
        self.keys: KeyRing | None = None
        self.bootstrap_token: str | None = None  # an admin token made at first start, shown once

    @property
    def bootstrap_servers(self) -> str:
        if self.broker is not None:
            return self.broker.bootstrap_servers
        assert self.settings.kafka_bootstrap_servers is not None
        return self.settings.kafka_bootstrap_servers

    @property
    def api_url(self) -> str:
        assert self._server is not None and self._server.servers, "API not started"
        host, port = self._server.servers[0].sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"

    def start(self) -> Stack:
        try:
            return self._start()
        except BaseException:
            self.stop()  # never leave a broker process behind
            raise

    def _start(self) -> Stack:
        settings = self.settings
        if settings.kafka_bootstrap_servers is None:
            self.broker = EmbeddedBroker(settings.embedded_broker_port).start()
            log.info("embedded broker started", bootstrap_servers=self.bootstrap_servers)
        ensure_topic(self.bootstrap_servers, settings.topic, settings.partitions)
        self.engine = make_engine(settings.database_url)
        migrate(self.engine)
        self.keys = KeyRing.for_signing(settings, create=True)
        producer_key(settings, create=True)  # its components sign with it; its collector trusts it
        self.bootstrap_token = _first_admin_token(self.engine)
        collector = services.collector(self.engine, settings, self.bootstrap_servers)
        self._spawn("driftline-collector", lambda: collector.run(self._stop))
        if settings.detect_enabled:
            self._detector_agent = services.detector_agent(settings, self.bootstrap_servers)
            worker = services.detector(self.engine, settings, self._detector_agent)
            self._spawn("driftline-detector", lambda: worker.run(self._stop))
        housekeeper = services.housekeeper(self.engine, settings, self.keys.signer())
        self._spawn(
            "driftline-housekeeping",
            lambda: housekeeper.run(self._stop, settings.checkpoint_interval_s),
        )
        alerting = services.alerting(settings)
        # One process holds the key anyway: its API signs on request too.
        app = services.api(self.engine, settings, self.keys, alerting)
        self._server = services.api_server(app, settings)
        self._spawn("driftline-api", self._server.run)
        while not self._server.started:
            if not self._threads[-1].is_alive():
                raise RuntimeError(
                    f"API could not start on {settings.api_host}:{settings.api_port}"
                    " (port taken? set DRIFTLINE_API_PORT)"
                )
            self._stop.wait(0.05)
        if alerting is not None:
            self._start_router(alerting)
        return self

    def _start_router(self, alerting: AlertingConfig) -> None:
        assert self.engine is not None
        settings = self.settings
        self._router_agent = services.router_agent(settings, self.bootstrap_servers)
        self._http = services.receiver_client()
        router = services.router(
            self.engine, settings, alerting,
            agent=self._router_agent, client=self._http, api_url=self.api_url,
        )  # fmt: skip
        self._spawn(
            "driftline-router", lambda: router.run(self._stop, settings, self.bootstrap_servers)
        )

    def wait(self) -> None:
        """Block until interrupted; raise if a component stopped by itself."""
        while not self._stop.wait(0.5):
            stopped = [thread.name for thread in self._threads if not thread.is_alive()]
            if stopped:
                raise RuntimeError(f"{', '.join(stopped)} stopped unexpectedly; see the log")

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.should_exit = True
        for thread in self._threads:
            thread.join(timeout=15)
        for agent in (self._detector_agent, self._router_agent):
            if agent is not None:
                agent.close(timeout_s=5)
        if self._http is not None:
            self._http.close()
        if self.broker is not None:
            self.broker.stop()
        if self.engine is not None:
            self.engine.dispose()

    def _spawn(self, name: str, target: Callable[[], object]) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def _first_admin_token(engine: Engine) -> str | None:
    """An admin token when the store has none that works, so that someone can get in."""
    now = datetime.now(UTC)
    with Session(engine) as session:
        if has_admin(session, now):
            return None
        name = free_name(session, "bootstrap-admin")  # one made before may be revoked
        issued = create_token(session, name=name, role="admin", created_by="driftline up", now=now)
        session.commit()
    return issued.token
