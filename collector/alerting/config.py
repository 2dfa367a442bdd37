"""The alerting configuration: who owns each model, how alerts are routed to receivers, which
alerts inhibit others. YAML with Alertmanager's vocabulary (``route``, ``matchers``,
``continue``, ``group_by``, ``group_wait``, ``group_interval``, ``repeat_interval``,
``receivers``, ``inhibit_rules``) plus Driftline's ``owners``.

``load_alerting`` reads a file and either returns the configuration or raises
``AlertConfigError`` listing every mistake with the file, line and key, so that
``driftline check-config`` can point at each one.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from driftline.collector.alerting.matchers import Matcher, MatcherError
from driftline.collector.core.config_files import ConfigFileError, load_model, located
from driftline.collector.core.durations import Duration

PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"


def _matcher(value: object) -> Matcher:
    if isinstance(value, Matcher):
        return value
    try:
        return Matcher.parse(str(value))
    except MatcherError as error:
        raise ValueError(str(error)) from None


MatcherField = Annotated[Matcher, BeforeValidator(_matcher)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


class WebhookConfig(_Strict):
    url: str
    send_resolved: bool = True
    max_alerts: int = Field(default=0, ge=0)  # 0: all


class SlackConfig(_Strict):
    api_url: str  # the incoming-webhook URL
    channel: str | None = None
    send_resolved: bool = True


class PagerDutyConfig(_Strict):
    routing_key: str
    url: str = PAGERDUTY_EVENTS_URL
    send_resolved: bool = True


class AlertmanagerConfig(_Strict):
    url: str  # the Alertmanager's base URL; alerts go to {url}/api/v2/alerts
    send_resolved: bool = True
    # How often the alerts it was told fire are posted again (``refresh.py``); keep it well
    # under its resolve_timeout (5m by default).
    resend_interval: Duration = timedelta(minutes=1)

    @field_validator("resend_interval")
    @classmethod
    def _a_reasonable_interval(cls, value: timedelta) -> timedelta:
        if not timedelta(milliseconds=100) <= value <= timedelta(hours=1):
            raise ValueError("must be from 100ms to 1h")
        return value


class Receiver(_Strict):
    name: str = Field(min_length=1)
    webhook_configs: list[WebhookConfig] = []
    slack_configs: list[SlackConfig] = []
    pagerduty_configs: list[PagerDutyConfig] = []
    alertmanager_configs: list[AlertmanagerConfig] = []


class Route(_Strict):
    receiver: str | None = None
    matchers: list[MatcherField] = []
    group_by: list[str] | None = None
    group_wait: Duration | None = None
    group_interval: Duration | None = None
    repeat_interval: Duration | None = None
    continue_: bool = Field(default=False, alias="continue")
    routes: list[Route] = []


class InhibitRule(_Strict):
    source_matchers: list[MatcherField] = Field(min_length=1)
    target_matchers: list[MatcherField] = Field(min_length=1)
    equal: list[str] = []


class Owner(_Strict):
    """Who is accountable for the models an alert's labels match, and where to turn next."""

    matchers: list[MatcherField] = Field(min_length=1)
    owner: str = Field(min_length=1)
    escalation: list[str] = []
    runbook: str | None = None
    severity: str = "warning"  # the alert's severity label; PagerDuty maps it


class AlertingConfig(_Strict):
    route: Route
    receivers: list[Receiver] = Field(min_length=1)
    inhibit_rules: list[InhibitRule] = []
    owners: list[Owner] = []

    def receiver(self, name: str) -> Receiver:
        return next(r for r in self.receivers if r.name == name)


class AlertConfigError(ConfigFileError):
    """Every mistake in an alerting file, each as ``file:line: key: what is wrong``."""


def load_alerting(path: Path) -> AlertingConfig:
    config, root = load_model(
        path, AlertingConfig, "a mapping with route and receivers", AlertConfigError
    )
    problems = [located(path, root, loc, message) for loc, message in _references(config)]
    if problems:
        raise AlertConfigError(problems)
    return config


def _references(config: AlertingConfig) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Mistakes no single field shows: unknown or duplicate receivers, a root that filters."""
    names = [receiver.name for receiver in config.receivers]
    for index, name in enumerate(names):
        if name in names[:index]:
            yield ("receivers", index, "name"), f"receiver {name!r} is defined twice"
    if config.route.receiver is None:
        yield ("route", "receiver"), "the root route needs a receiver, the default for all alerts"
    if config.route.matchers:
        yield ("route", "matchers"), "the root route takes every alert; it cannot have matchers"

    def walk(
        route: Route, loc: tuple[str | int, ...]
    ) -> Iterator[tuple[tuple[str | int, ...], str]]:
        if route.receiver is not None and route.receiver not in names:
            yield (
                (*loc, "receiver"),
                (f"unknown receiver {route.receiver!r}; defined: {', '.join(names)}"),
            )
        for index, child in enumerate(route.routes):
            yield from walk(child, (*loc, "routes", index))

    yield from walk(config.route, ("route",))
