"""Generative decisions in the read model: tokens, provider and finish reason in the API; cost by
the price table in force at each decision's time (in Python and in SQL alike); named scores on
reviews and feedback, searched by range and covered by row verification; and decisions stored
before migration 0015 given their columns from the ledger."""

import json
import random
import re
import uuid
from datetime import UTC, date, datetime, timedelta
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlmodel import Session, select

from driftline.agent.contract import (
    MAX_TOKENS,
    DecisionPayload,
    Event,
    FeedbackPayload,
    ModelRef,
    ReviewPayload,
    Score,
    TokenUsage,
    encode,
)
from driftline.collector.audit.integrity import KeyRing
from driftline.collector.audit.row_verification import check_all
from driftline.collector.consume.ingest import RawMessage, write_batch
from driftline.collector.store.database import MIGRATIONS, make_engine, migrate
from driftline.collector.store.models import Decision
from driftline.collector.store.prices import (
    Price,
    PriceFile,
    PriceFileError,
    PriceTable,
    load_prices,
)
from driftline.collector.web.api.app import create_app
from tests import events
from tests.api_client import api_client, new_token
from tests.ui.test_protection import SITE, sign_in

START = datetime(2026, 6, 1, tzinfo=UTC)
CHAT = ModelRef(name="gpt-4o", version="2024-08-06")
PRICES = PriceTable.of(
    PriceFile(
        prices=[
            Price(model="gpt-4o", effective=date(2026, 1, 1), input=5, output=15),
            # From 1 June the price falls; decisions before keep the old one.
            Price(model="gpt-4o", effective=date(2026, 6, 1), input=2.5, output=10,
                  cached_input=1.25),
            Price(model="gpt-4o", provider="azure.ai.openai", effective=date(2026, 1, 1),
                  input=3, output=12),
            Price(model="gpt-4o-mini", effective=date(2026, 1, 1), input=0.15, output=0.6),
        ]
    )
)  # fmt: skip


def store(engine: Engine, batch: list[Event]) -> None:
    with Session(engine) as session:
        messages = [RawMessage("events", 0, i, None, encode(e)) for i, e in enumerate(batch)]
        write_batch(session, messages)
        session.commit()


def chat(
    at: datetime,
    *,
    provider: str | None = "openai",
    response_model: str | None = None,
    finish_reason: str | None = "stop",
    usage: TokenUsage | None = None,
) -> Any:
    return events.decision(
        model=CHAT,
        occurred_at=at,
        payload=DecisionPayload(
            inputs={"prompt": "Where is my invoice?"},
            output="Under Billing.",
            latency_ms=800,
            automated=True,
            operation="chat",
            provider=provider,
            response_model=response_model,
            finish_reason=finish_reason,
            usage=usage or TokenUsage(input_tokens=1_000, output_tokens=200),
        ),
    )


def _row(event: Any) -> Decision:
    usage = event.payload.usage or TokenUsage()
    return Decision(
        decision_id=event.decision_id,
        event_id=event.event_id,
        occurred_at=event.occurred_at,
        service="s",
        model_name=event.model.name,
        model_version="v",
        inputs={},
        output=None,
        latency_ms=1,
        automated=True,
        provider=event.payload.provider,
        response_model=event.payload.response_model,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cached_input_tokens=usage.cached_input_tokens,
    )


def test_a_decision_costs_what_the_price_in_force_at_its_time_said() -> None:
    before = _row(chat(START - timedelta(microseconds=1)))
    on_the_day = _row(chat(START))
    assert PRICES.cost(before) == pytest.approx((1_000 * 5 + 200 * 15) / 1e6)
    assert PRICES.cost(on_the_day) == pytest.approx((1_000 * 2.5 + 200 * 10) / 1e6)
    # A price added later, from a later day, leaves both as they were.
    later = PriceFile(prices=[*_entries(PRICES), Price(model="gpt-4o", effective=date(2026, 9, 1),
                                                       input=1, output=1)])  # fmt: skip
    assert PriceTable.of(later).cost(before) == PRICES.cost(before)
    assert PriceTable.of(later).cost(on_the_day) == PRICES.cost(on_the_day)


def _entries(table: PriceTable) -> list[Price]:
    return [price for entries in table.entries.values() for price in entries]


def test_cached_tokens_the_provider_and_the_answering_model_choose_the_price() -> None:
    cached = _row(chat(START, usage=TokenUsage(input_tokens=1_000, output_tokens=0,
                                               cached_input_tokens=600)))  # fmt: skip
    assert PRICES.cost(cached) == pytest.approx((400 * 2.5 + 600 * 1.25) / 1e6)
    azure = _row(chat(START, provider="azure.ai.openai"))
    assert PRICES.cost(azure) == pytest.approx((1_000 * 3 + 200 * 12) / 1e6)
    mini = _row(chat(START, response_model="gpt-4o-mini"))
    assert PRICES.cost(mini) == pytest.approx((1_000 * 0.15 + 200 * 0.6) / 1e6)
    assert PRICES.cost(_row(chat(START, response_model="o3"))) is None  # no price: unknown
    no_tokens = _row(chat(START))
    no_tokens.input_tokens = no_tokens.output_tokens = None
    assert PRICES.cost(no_tokens) is None  # unknown, never 0
    early = _row(chat(datetime(2025, 12, 31, 23, 59, tzinfo=UTC)))
    assert PRICES.cost(early) is None  # before any price of its model


def test_a_price_file_with_mistakes_names_each_line(tmp_path: Path) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text(
        "currency: usd\n"
        "prices:\n"
        "  - {model: gpt-4o, effective: 2026-01-01, input: 5, output: -1}\n"
        "  - {model: gpt-4o, effective: yesterday, input: 5, output: 1}\n"
    )
    with pytest.raises(PriceFileError) as caught:
        load_prices(path)
    problems = "\n".join(caught.value.problems)
    assert f"{path}:1: currency" in problems
    assert f"{path}:3: prices[0].output" in problems
    assert f"{path}:4: prices[1].effective" in problems
    # A date YAML itself cannot read (month 13) is named by its line too, not a traceback.
    path.write_text("prices:\n  - {model: m, effective: 2026-13-01, input: 1, output: 1}\n")
    with pytest.raises(PriceFileError, match=r"prices.yaml:2: not a valid value: month"):
        load_prices(path)
    path.write_text(
        "prices:\n"
        "  - {model: m, effective: 2026-01-01, input: 1, output: 1}\n"
        "  - {model: m, effective: 2026-01-01, input: 2, output: 2}\n"
    )
    with pytest.raises(PriceFileError, match="m has two prices from 2026-01-01"):
        load_prices(path)


def _corpus(seed: int = 3) -> list[Event]:
    rng = random.Random(seed)
    batch: list[Event] = []
    for n in range(120):
        usage = rng.choice(
            [
                None,
                TokenUsage(input_tokens=rng.randrange(5_000), output_tokens=rng.randrange(900)),
                TokenUsage(input_tokens=2_000, cached_input_tokens=rng.randrange(2_000)),
                TokenUsage(output_tokens=rng.randrange(900), reasoning_tokens=0),
            ]
        )
        decision = chat(
            START + timedelta(days=rng.randrange(-200, 60), seconds=rng.randrange(86_400)),
            provider=rng.choice([None, "openai", "azure.ai.openai"]),
            response_model=rng.choice([None, None, "gpt-4o-mini", "o3"]),
            finish_reason=rng.choice(["stop", "length", None]),
            usage=usage or TokenUsage(),
        )
        if usage is None:
            payload = decision.payload.model_copy(update={"usage": None})
            decision = decision.model_copy(update={"payload": payload})
        batch.append(decision)
        if n % 3 == 0:
            score = Score(name="faithfulness", value=round(rng.random(), 2), source="model")
            judged = FeedbackPayload(reporter="judge", scores=[score])
            batch.append(events.feedback(decision.decision_id, model=CHAT, payload=judged))
        if n % 5 == 0:
            flag = Score(name="toxic", value=rng.random() < 0.3, source="rule")
            tone = Score(name="tone", value=rng.choice(["warm", "curt"]), source="human")
            reviewed = ReviewPayload(reviewer="a.kim", action="approve", scores=[flag, tone])
            batch.append(events.review(decision.decision_id, model=CHAT, payload=reviewed))
    return batch


def test_the_cost_in_sql_is_the_cost_in_python(engine: Engine) -> None:
    store(engine, _corpus())
    with Session(engine) as session:
        rows = session.exec(select(Decision, PRICES.cost_column())).all()
    assert len(rows) == 120
    priced = 0
    for decision, cost in rows:
        expected = PRICES.cost(decision)
        assert (cost is None) == (expected is None), decision
        if expected is not None:
            priced += 1
            assert float(cost) == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert 20 < priced < 120  # the corpus has both


def _ids(client: Any, **query: Any) -> set[str]:
    found: set[str] = set()
    cursor = None
    while True:
        answer = client.get("/decisions", params=query | ({"cursor": cursor} if cursor else {}))
        assert answer.status_code == 200, answer.text
        page = answer.json()
        found |= {item["decision_id"] for item in page["items"]}
        if not (cursor := page["next_cursor"]):
            return found


def test_search_by_provider_finish_reason_cost_and_score_range(engine: Engine) -> None:
    batch = _corpus()
    store(engine, batch)
    client = api_client(engine, "auditor", prices=PRICES)
    decisions = {str(e.decision_id): e for e in batch if e.type == "decision"}
    by_provider = {i for i, e in decisions.items() if e.payload.provider == "azure.ai.openai"}
    assert _ids(client, provider="azure.ai.openai") == by_provider
    assert _ids(client, finish_reason="length") == {
        i for i, e in decisions.items() if e.payload.finish_reason == "length"
    }
    assert _ids(client, operation="chat") == set(decisions)
    with Session(engine) as session:
        costs = {str(d.decision_id): PRICES.cost(d) for d in session.exec(select(Decision))}
    assert _ids(client, min_cost=0.004, max_cost=0.02) == {
        i for i, c in costs.items() if c is not None and 0.004 <= c <= 0.02
    }
    faithful = {
        str(e.decision_id) for e in batch
        if e.type == "feedback" and 0.5 <= e.payload.scores[0].value <= 0.9  # type: ignore[union-attr]
    }  # fmt: skip
    assert _ids(client, score="faithfulness", min_score=0.5, max_score=0.9) == faithful
    toxic = {
        str(e.decision_id) for e in batch
        if e.type == "review" and e.payload.scores[0].value is True  # type: ignore[union-attr]
    }  # fmt: skip
    assert toxic and _ids(client, score="toxic", min_score=1) == toxic
    assert _ids(client, score="tone") == set()  # a label has no range: categorical never matches
    reviewed = {str(e.decision_id) for e in batch if e.type == "review"}
    assert _ids(client, score="toxic") == reviewed  # without bounds: that the score was given
    answer = client.get("/decisions", params={"min_score": 0.5})
    assert answer.status_code == 422 and "need score" in answer.text


def test_a_decision_shows_its_tokens_cost_and_scores(engine: Engine) -> None:
    usage = TokenUsage(
        input_tokens=1_000, output_tokens=200, cached_input_tokens=600, reasoning_tokens=50
    )
    decision = chat(START, usage=usage)
    score = Score(name="helpfulness", value=4, source="human", comment="clear")
    payload = FeedbackPayload(reporter="qa", scores=[score])
    feedback = events.feedback(decision.decision_id, model=CHAT, payload=payload)
    store(engine, [decision, feedback])
    answer = api_client(engine, "auditor", prices=PRICES).get(f"/decisions/{decision.decision_id}")
    assert answer.status_code == 200, answer.text
    shown = answer.json()
    assert shown["verified"]["intact"] is True
    assert {k: shown["decision"][k] for k in (
        "operation", "provider", "finish_reason", "input_tokens", "output_tokens",
        "cached_input_tokens", "reasoning_tokens", "confidence", "currency")} == {
        "operation": "chat", "provider": "openai", "finish_reason": "stop", "input_tokens": 1_000,
        "output_tokens": 200, "cached_input_tokens": 600, "reasoning_tokens": 50,
        "confidence": None, "currency": "USD",
    }  # fmt: skip
    assert shown["decision"]["cost"] == pytest.approx((400 * 2.5 + 600 * 1.25 + 200 * 10) / 1e6)
    assert shown["feedback"][0]["scores"] == [
        {"name": "helpfulness", "value": 4.0, "source": "human", "comment": "clear",
         "kind": "numeric"}
    ]  # fmt: skip
    unpriced = api_client(engine, "auditor").get(f"/decisions/{decision.decision_id}").json()
    assert unpriced["decision"]["cost"] is None and unpriced["decision"]["currency"] is None
    refused = api_client(engine, "auditor").get("/decisions", params={"min_cost": 0})
    assert refused.status_code == 409 and "DRIFTLINE_PRICES" in refused.text


def test_a_score_altered_in_the_read_model_is_found(engine: Engine) -> None:
    decision = chat(START)
    score = Score(name="faithfulness", value=0.2, source="model")
    payload = FeedbackPayload(reporter="judge", scores=[score])
    feedback = events.feedback(decision.decision_id, model=CHAT, payload=payload)
    store(engine, [decision, feedback])
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE feedback SET scores = :s"),
            {"s": '[{"name": "faithfulness", "value": 0.9, "source": "model", "kind": "numeric"}]'},
        )
        connection.execute(text("UPDATE decisions SET output_tokens = 1"))
    with Session(engine) as session:
        found = check_all(session)
    problems = sorted(t.table for t in found.tampering)
    assert problems == ["decisions", "feedback"], found.tampering


def _upgrade(engine: Engine, revision: str, down: bool = False) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)


def test_decisions_stored_before_0015_get_their_tokens_from_the_ledger(database_url: str) -> None:
    engine = make_engine(database_url)
    migrate(engine)
    v1_chat = events.decision(
        model=CHAT,
        payload=DecisionPayload(inputs={"prompt": "hi"}, output="hello", confidence=0.5,
                                latency_ms=1, automated=True, operation="chat",
                                usage=TokenUsage(input_tokens=7, output_tokens=3)),
        schema_version=1,
    )  # fmt: skip
    # Version 1 bounded no count: one beyond what a BIGINT holds is kept as unknown.
    huge = v1_chat.model_copy(
        update={
            "decision_id": uuid.uuid4(),
            "event_id": events.new_event_id(),
            "payload": v1_chat.payload.model_copy(
                update={"usage": TokenUsage(input_tokens=10**20, output_tokens=3)}
            ),
        }
    )
    store(engine, [v1_chat, events.decision(schema_version=1), huge])
    _upgrade(engine, "0014", down=True)  # as the rows were: no column for tokens
    _upgrade(engine, "head")
    with Session(engine) as session:
        row = session.get(Decision, v1_chat.decision_id)
        assert row is not None
        assert (row.operation, row.input_tokens, row.output_tokens) == ("chat", 7, 3)
        beyond = session.get(Decision, huge.decision_id)
        assert beyond is not None and (beyond.input_tokens, beyond.output_tokens) == (None, 3)
        assert check_all(session).intact
    engine.dispose()


def test_an_event_id_is_unique_so_scores_cannot_be_forged_twice(engine: Engine) -> None:
    """A redelivered feedback is one row: its scores are not counted twice."""
    decision = chat(START)
    feedback = events.feedback(decision.decision_id, model=CHAT, payload=FeedbackPayload(
        reporter="judge", scores=[Score(name="x", value=1, source="rule")]))  # fmt: skip
    store(engine, [decision, feedback])
    store(engine, [feedback])
    client = api_client(engine, "auditor")
    assert len(client.get(f"/decisions/{decision.decision_id}").json()["feedback"]) == 1
    assert _ids(client, score="x", min_score=1, max_score=1) == {
        str(uuid.UUID(str(decision.decision_id)))
    }


def test_the_pages_show_tokens_cost_latency_per_operation_and_scores(engine: Engine) -> None:
    now = datetime.now(UTC)
    usage = TokenUsage(input_tokens=1_000, output_tokens=200)
    asked = chat(now - timedelta(minutes=5), usage=usage)
    embedded = events.decision(
        model=CHAT,
        occurred_at=now - timedelta(hours=3),
        payload=DecisionPayload(inputs={"text": "x"}, output=None, latency_ms=40, automated=True,
                                operation="embeddings", usage=TokenUsage(input_tokens=10)),
    )  # fmt: skip
    score = Score(name="faithfulness", value=0.25, source="model", comment="<b>cites nothing</b>")
    judged = events.feedback(
        asked.decision_id, model=CHAT, payload=FeedbackPayload(reporter="judge", scores=[score])
    )
    classic = events.decision(occurred_at=now)
    store(engine, [asked, embedded, judged, classic])
    app = create_app(engine, keys=KeyRing.of(Ed25519PrivateKey.generate()), prices=PRICES)
    with TestClient(app, base_url=SITE, follow_redirects=False) as browser:
        sign_in(browser, new_token(engine, "auditor"))
        overview = browser.get("/ui/")
        decision = browser.get(f"/ui/decisions/{asked.decision_id}")
    assert overview.status_code == 200 and decision.status_code == 200
    text = " ".join(unescape(re.sub(r"<[^>]+>", " ", overview.text)).split())
    cost = (1_000 * 2.5 + 200 * 10) / 1e6
    assert f"605 tokens, {(cost + 10 * 2.5 / 1e6) / 2:.5f} USD" in text  # the mean of the two
    assert f"1,200 tokens, {cost:.4f} USD / 1,210 tokens" in text  # last hour / last day
    assert "chat: 800.0 / 800.0 / 800.0" in text and "embeddings: 40.0" in text
    page = " ".join(unescape(re.sub(r"<[^>]+>", " ", decision.text)).split())
    assert "chat by openai; finished: stop" in page
    assert "1000 in, 200 out" in page and f"{cost:.6f} USD" in page
    assert "faithfulness 0.25 (numeric, by model) : <b>cites nothing</b>" in page
    assert "<b>cites" not in decision.text  # the judge's comment is escaped, never markup
    assert "— (the model gives none)" in page


def test_pages_and_exports_hold_with_the_largest_counts_and_cost_ranges(engine: Engine) -> None:
    """Counts at the contract's bound sum without overflow; a decision without a confidence
    lists on the audit page; a cost range is searched and exported with the price table, and
    refused, saying why, without one."""
    most = TokenUsage(input_tokens=MAX_TOKENS, output_tokens=MAX_TOKENS)
    now = datetime.now(UTC)
    batch = [chat(now - timedelta(minutes=n), usage=most) for n in range(3)]
    store(engine, [*batch, chat(now)])
    app = create_app(engine, keys=KeyRing.of(Ed25519PrivateKey.generate()), prices=PRICES)
    unpriced = create_app(engine, keys=KeyRing.of(Ed25519PrivateKey.generate()))
    with TestClient(app, base_url=SITE, follow_redirects=False) as browser:
        sign_in(browser, new_token(engine, "auditor"))
        assert browser.get("/ui/").status_code == 200
        listed = browser.get("/ui/audit", params={"min_cost": 0.004, "max_cost": 0.006})
        assert listed.status_code == 200 and listed.text.count("/ui/decisions/") == 1
        exported = browser.get("/decisions/export", params={"min_cost": 0.004, "max_cost": 0.006})
        assert exported.status_code == 200
        (row,) = [json.loads(line) for line in exported.text.splitlines()]
        assert row["cost"] == pytest.approx(0.0045) and row["currency"] == "USD"
    with TestClient(unpriced, base_url=SITE, follow_redirects=False) as browser:
        sign_in(browser, new_token(engine, "auditor"))
        refused = browser.get("/ui/audit", params={"min_cost": 0})
        assert refused.status_code == 200 and "needs a price table" in refused.text
        assert browser.get("/decisions/export", params={"min_cost": 0}).status_code == 409
        everything = browser.get("/decisions/export", params={"format": "csv"})
        assert everything.status_code == 200 and everything.text.splitlines()[0].count(",cost,")
