"""GET /accountability: every role reads the map with each entry's gaps and next review and the
models it leaves without an entry; no token, no map; names come back exactly as written. The
API refuses to start on a map with mistakes, naming them."""

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine
from sqlmodel import Session, select

from driftline.agent.contract import Event, ModelRef, encode
from driftline.collector.audit.integrity import KeyRing
from driftline.collector.consume.ingest import RawMessage, write_batch
from driftline.collector.core.settings import CollectorSettings
from driftline.collector.golive.accountability import (
    AccountabilityConfigError,
    AccountabilityMap,
    load_accountability,
)
from driftline.collector.runtime import services
from driftline.collector.store.models import AuditRead
from tests import events
from tests.api_client import api_client
from tests.test_cli import driftline

TODAY = datetime.now(UTC).date()
HOSTILE = "<img src=x onerror=alert(1)> «Zoë» 模型"


def store(engine: Engine, batch: list[Event]) -> None:
    with Session(engine) as session:
        write_batch(
            session, [RawMessage("events", 0, i, None, encode(e)) for i, e in enumerate(batch)]
        )
        session.commit()


def accountability(*entries: dict[str, Any]) -> AccountabilityMap:
    return AccountabilityMap.model_validate({"review_every": "90d", "decision_types": entries})


MAP = accountability(
    {
        "model": "credit-risk",
        "accountable": HOSTILE,
        "escalation": ["risk-oncall", "head-of-ml"],
        "audit_trail": "every decision in the ledger, 7 years",
        "reviewed_on": TODAY - timedelta(days=10),
        "reviewed_by": "model-risk-committee",
    },
    {
        "model": "credit-risk",
        "output": "decline",
        "accountable": "head-of-credit-risk",
        "reviewed_on": TODAY - timedelta(days=100),
    },
)


@pytest.fixture
def decided(engine: Engine) -> Engine:
    store(
        engine,
        [events.decision(), events.decision(model=ModelRef(name=f"fraud {HOSTILE}", version="1"))],
    )
    return engine


def test_an_auditor_reads_each_entry_with_its_gaps_and_next_review(decided: Engine) -> None:
    with api_client(decided, "auditor", accountability=MAP) as api:
        answer = api.get("/accountability")
    assert answer.status_code == 200, answer.text
    found = answer.json()
    assert found["configured"] is True and found["complete"] is False
    whole, declines = found["decision_types"]
    assert whole["entry"] == 1 and whole["gaps"] == []
    assert whole["accountable"] == HOSTILE  # exactly as written; escaping is the page's
    assert whole["escalation"] == ["risk-oncall", "head-of-ml"]
    assert whole["review_every_days"] == 90
    reviewed = datetime.combine(TODAY - timedelta(days=10), datetime.min.time(), UTC)
    assert datetime.fromisoformat(whole["next_review"]) == reviewed + timedelta(days=90)
    assert (declines["output"], declines["segment"]) == ("decline", None)
    assert [g["kind"] for g in declines["gaps"]] == [
        "no escalation path",
        "no audit trail",
        "review overdue",
    ]
    assert found["uncovered"] == [
        {
            "model": f"fraud {HOSTILE}",
            "kind": "no entry",
            "what": f"no entry of the map covers fraud {HOSTILE}",
        }
    ]


def test_without_a_map_every_model_is_uncovered_and_the_setting_named(decided: Engine) -> None:
    with api_client(decided, "auditor") as api:
        found = api.get("/accountability").json()
    assert found["configured"] is False and found["complete"] is False
    assert found["decision_types"] == []
    assert {u["model"] for u in found["uncovered"]} == {"credit-risk", f"fraud {HOSTILE}"}
    assert all("DRIFTLINE_ACCOUNTABILITY_CONFIG" in u["what"] for u in found["uncovered"])


def test_a_complete_map_says_so(engine: Engine) -> None:
    store(engine, [events.decision()])
    with api_client(engine, "auditor", accountability=accountability(MAP.decision_types[0])) as api:
        assert api.get("/accountability").json()["complete"] is True


def test_it_needs_a_token_is_recorded_and_refuses_an_unknown_parameter(decided: Engine) -> None:
    with api_client(decided, "auditor", accountability=MAP) as api:
        assert api.get("/accountability", params={"model": "x"}).status_code == 422
        assert api.get("/accountability").status_code == 200
        del api.headers["Authorization"]
        assert api.get("/accountability").status_code == 401
        assert "/accountability" in api.get("/openapi.json").json()["paths"]
    with Session(decided) as session:
        reads = session.exec(select(AuditRead).where(AuditRead.path == "/accountability")).all()
    assert [r.role for r in reads] == ["auditor", "auditor"]  # the 401 is not one; the 422 is


def test_the_api_is_built_with_the_map_its_setting_names(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "accountability.yaml"
    path.write_text(yaml.safe_dump(MAP.model_dump(mode="json", exclude_none=True)))
    assert load_accountability(path) == MAP
    settings = CollectorSettings(accountability_config=path)
    app = services.api(engine, settings, keys=_keys(), config=None)
    assert app.state.accountability == MAP
    path.write_text("decision_types:\n  - model: m\n    reviewed_on: soon\n")
    with pytest.raises(AccountabilityConfigError, match=r":3: decision_types\[0\]\.reviewed_on"):
        services.api(engine, settings, keys=_keys(), config=None)


def test_driftline_api_will_not_start_on_a_map_with_mistakes(tmp_path: Path) -> None:
    path = tmp_path / "accountability.yaml"
    path.write_text("decision_types:\n  - model: m\n    escalation: [ok, '']\n")
    public = tmp_path / "signing-key.pub.pem"
    public.write_bytes(
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    result = driftline(
        "api",
        env={
            "DRIFTLINE_DATABASE_URL": f"sqlite:///{tmp_path / 'd.db'}",
            "DRIFTLINE_API_PORT": "0",
            "DRIFTLINE_ACCOUNTABILITY_CONFIG": str(path),
            "DRIFTLINE_SIGNING_PUBLIC_KEY_FILE": str(public),
            "COLUMNS": "300",
        },
        timeout=60,
    )
    said = " ".join((result.stdout + result.stderr).split())
    assert result.returncode == 2, said
    assert "the accountability map (DRIFTLINE_ACCOUNTABILITY_CONFIG) has mistakes" in said
    assert f"{path}:3: decision_types[0].escalation[1]: String should have at least 1" in said


def _keys() -> KeyRing:
    return KeyRing.of(Ed25519PrivateKey.generate())
