"""The ledger's periodic chores: sign a checkpoint of every chain that grew, and erase the
inputs of decisions past the retention period. One process does them at a time (a database
advisory lock, as for the detector worker). It holds the checkpoint signing key
(``driftline housekeep``, or inside ``driftline up``), so that API replicas need not."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from driftline.collector.audit.checkpoints import sign_heads
from driftline.collector.audit.erasure import apply_retention
from driftline.collector.core.health import Heartbeat
from driftline.collector.core.leadership import Leadership

log = structlog.get_logger(__name__)

ROLE = "driftline-housekeeping"


class Housekeeper:
    def __init__(self, engine: Engine, signing: Ed25519PrivateKey, retention_days: int) -> None:
        self._engine = engine
        self._signing = signing
        self._retention_days = retention_days

    def run(
        self, stop: threading.Event, interval_s: float, heartbeat: Heartbeat | None = None
    ) -> None:
        leadership = Leadership(self._engine, ROLE)
        try:
            while not stop.wait(interval_s):
                if heartbeat is not None:
                    heartbeat.beat()
                try:
                    if leadership.hold():
                        self.once()
                except SQLAlchemyError as error:
                    log.error("housekeeping failed; retrying next interval", error=str(error))
        finally:
            leadership.release()

    def once(self) -> None:
        now = datetime.now(UTC)
        with Session(self._engine) as session:
            signed = sign_heads(session, self._signing, now)
            retained = apply_retention(
                session, retention_days=self._retention_days, now=now, key=self._signing
            )
            session.commit()
        if signed:
            log.info("ledger checkpoints signed", chains=len(signed))
        if retained.erased or retained.held:
            log.info("retention applied", erased=retained.erased, held=retained.held)
