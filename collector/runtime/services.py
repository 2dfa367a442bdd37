"""Every long-running part of Driftline, built from settings in one place: the collector, the
detector worker, the alert router, the housekeeper and the API. ``driftline up`` and ``demo``
(``runtime.stack``) run them all in one process; ``collect``, ``detect``, ``route``,
``housekeep`` and ``api`` run one each. Each caller owns the lifetime of what it is given
(threads, agents, clients); the wiring is here only.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from sqlalchemy import Engine

from driftline.agent import Driftline
from driftline.collector.alerting.config import AlertingConfig, load_alerting
from driftline.collector.alerting.router import ROUTER_SERVICE, AlertRouter
from driftline.collector.audit.housekeeping import Housekeeper
from driftline.collector.audit.integrity import KeyRing
from driftline.collector.consume.consumer import Collector
from driftline.collector.core.producer_keys import trusted_producers
from driftline.collector.core.settings import CollectorSettings
from driftline.collector.drift.worker import DETECTOR_SERVICE, DetectorWorker
from driftline.collector.golive.accountability import load_accountability
from driftline.collector.golive.contracts import load_contracts
from driftline.collector.golive.thresholds import load_thresholds
from driftline.collector.store.prices import load_prices
from driftline.collector.web.api.app import create_app

RECEIVER_TIMEOUT_S = 10.0  # a receiver slower than this is retried from the outbox later


def collector(engine: Engine, settings: CollectorSettings, bootstrap_servers: str) -> Collector:
    """The consumer that stores the log; ProducerKeyError when a trusted key cannot be read."""
    return Collector.from_settings(engine, settings, bootstrap_servers)


def detector_agent(settings: CollectorSettings, bootstrap_servers: str) -> Driftline:
    """The detector worker's agent: its verdicts are signed with the producer key."""
    spool_dir = settings.detect_spool_dir
    return _component_agent(DETECTOR_SERVICE, spool_dir, settings, bootstrap_servers)


def detector(engine: Engine, settings: CollectorSettings, agent: Driftline) -> DetectorWorker:
    return DetectorWorker(engine, agent, settings)


def alerting(settings: CollectorSettings) -> AlertingConfig | None:
    """The alerting file, when one is configured; AlertConfigError naming its mistakes."""
    return load_alerting(settings.alerting_config) if settings.alerting_config else None


def fallbacks(settings: CollectorSettings) -> dict[str, dict[str, str]]:
    """Per model, per input, its source's fallback from the contracts file, when one is
    configured; ContractsFileError naming its mistakes."""
    return load_contracts(settings.input_contracts).fallbacks() if settings.input_contracts else {}


def router_agent(settings: CollectorSettings, bootstrap_servers: str) -> Driftline:
    """The alert router's agent: its notifications are signed with the producer key."""
    spool_dir = settings.router_spool_dir
    return _component_agent(ROUTER_SERVICE, spool_dir, settings, bootstrap_servers)


def _component_agent(
    service: str, spool_dir: Path, settings: CollectorSettings, bootstrap_servers: str
) -> Driftline:
    return Driftline(
        service=service,
        kafka_bootstrap_servers=bootstrap_servers,
        topic=settings.topic,
        spool_dir=spool_dir,
        producer_key_file=settings.producer_key_file,
    )


def receiver_client() -> httpx.Client:
    """The HTTP client the router delivers notifications with."""
    return httpx.Client(timeout=RECEIVER_TIMEOUT_S)


def router(
    engine: Engine,
    settings: CollectorSettings,
    config: AlertingConfig,
    *,
    agent: Driftline,
    client: httpx.Client,
    api_url: str,
) -> AlertRouter:
    """The router; alerts link to DRIFTLINE_EXTERNAL_URL, else to ``api_url``, and show the
    fallbacks of DRIFTLINE_INPUT_CONTRACTS (ContractsFileError when it has mistakes)."""
    return AlertRouter(
        engine=engine,
        config=config,
        agent=agent,
        client=client,
        external_url=settings.external_url or api_url,
        producers=trusted_producers(settings),
        fallbacks=fallbacks(settings),
    )


def housekeeper(
    engine: Engine, settings: CollectorSettings, signing: Ed25519PrivateKey
) -> Housekeeper:
    """Checkpoint signing and retention, with the signing key."""
    return Housekeeper(engine, signing, settings.retention_days)


def api(
    engine: Engine, settings: CollectorSettings, keys: KeyRing, config: AlertingConfig | None
) -> FastAPI:
    """The API and web page. With a key ring that holds no signing key, the routes that sign
    answer 503; ProducerKeyError when a trusted producer key cannot be read, PriceFileError
    when the price table has mistakes, AccountabilityConfigError when the accountability map
    has."""
    accountability = settings.accountability_config
    return create_app(
        engine,
        keys=keys,
        alerting_config=config,
        trace_link_template=settings.trace_link_template,
        producers=trusted_producers(settings),
        prices=load_prices(settings.prices) if settings.prices else None,
        accountability=load_accountability(accountability) if accountability else None,
        thresholds=load_thresholds(settings.readiness_config)
        if settings.readiness_config
        else None,
        contracts=load_contracts(settings.input_contracts) if settings.input_contracts else None,
    )


def api_server(app: FastAPI, settings: CollectorSettings) -> uvicorn.Server:
    return uvicorn.Server(
        uvicorn.Config(app, host=settings.api_host, port=settings.api_port, log_level="warning")
    )
