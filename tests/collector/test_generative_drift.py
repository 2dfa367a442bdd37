"""Drift of a generative service through the worker: the descriptors Driftline computes of
prompts and completions (length, language, refusals, what the redaction found), token counts
and finish reasons are baseline features, under the same false-alarm control as the rest. The
prompts are generated from templates (stated below), the real broker takes the verdicts."""

import random
import re
from datetime import UTC, datetime, timedelta
from html import unescape
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import Engine
from sqlmodel import Session, select

from driftline.agent import Driftline
from driftline.agent.contract import (
    MAX_EVENT_BYTES,
    BaselineSetEvent,
    DecisionPayload,
    DriftDetectedEvent,
    Embeddings,
    Event,
    FeedbackPayload,
    ModelRef,
    Score,
    TokenUsage,
    component_event,
    decode,
    wire_bytes,
)
from driftline.collector.audit.integrity import KeyRing
from driftline.collector.core.settings import CollectorSettings
from driftline.collector.drift.baselines import (
    active_baseline,
    baseline_payload,
    fit_first_decisions,
    for_one_event,
)
from driftline.collector.drift.scores import _values, score_trend
from driftline.collector.drift.worker import DetectorWorker
from driftline.collector.runtime.broker import EmbeddedBroker
from driftline.collector.store.models import DriftVerdict
from driftline.collector.web.api.app import create_app
from driftline.collector.web.ui.views import version_drift
from driftline.detectors.baseline import fit_baseline, record_features
from tests import events
from tests.api_client import new_token
from tests.collector.test_drift_worker import store
from tests.topic_reader import read_topic
from tests.ui.test_protection import SITE, sign_in

CHAT = ModelRef(name="help-bot", version="1")
VERBS = ["pay", "download", "cancel", "change", "dispute", "find", "update", "split"]
NOUNS = ["invoice", "bill", "refund", "subscription", "receipt", "payment", "plan", "card"]
FRENCH = [
    *("Comment payer ma facture", "Où trouver mon reçu", "Je veux annuler mon abonnement"),
    *("Pourquoi ce prélèvement", "Changer ma carte bancaire", "Demander un remboursement"),
]


def prompt(rng: random.Random) -> str:
    """A billing question of 8 verbs, 8 nouns, a month and an amount: thousands of distinct
    texts, as a help desk's are."""
    month = rng.choice(["January", "March", "June", "October"])
    return (
        f"How do I {rng.choice(VERBS)} my {rng.choice(NOUNS)} for {month}? "
        f"It says {rng.randrange(5, 500)} euros."
    )


def chat(text: str, answer: str, rng: random.Random, finish_reason: str = "stop") -> Event:
    return events.decision(
        model=CHAT,
        payload=DecisionPayload(
            inputs={"prompt": text},
            output=answer,
            latency_ms=rng.uniform(400, 900),
            automated=True,
            operation="chat",
            provider="openai",
            finish_reason=finish_reason,
            usage=TokenUsage(input_tokens=len(text) // 4, output_tokens=rng.randrange(20, 60)),
        ),
    )


def answer(rng: random.Random) -> str:
    return f"Open Billing, then {rng.choice(NOUNS)}s, and choose {rng.choice(VERBS)}."


def _worker_with_baseline(engine: Engine, agent: Driftline, first: list[Event]) -> DetectorWorker:
    store(engine, first)
    with Session(engine) as session:
        fitted = fit_first_decisions(session, CHAT.name, CHAT.version, len(first))
    assert fitted is not None
    payload = baseline_payload(fitted, version=CHAT.version, set_by="ml-lead")
    store(engine, [BaselineSetEvent(service="ml-lead", model=CHAT, payload=payload)])
    return DetectorWorker(engine, agent, _checking())


def _checking() -> CollectorSettings:
    return CollectorSettings(
        detect_min_decisions=100, detect_window_decisions=500, detect_raise_after=1,
        detect_stream_arl=0,
    )  # fmt: skip


def _agent(broker: EmbeddedBroker, topic: str, tmp_path: Path) -> Driftline:
    return Driftline(
        service="driftline-detector", kafka_bootstrap_servers=broker.bootstrap_servers,
        topic=topic, spool_dir=tmp_path / "spool",
    )  # fmt: skip


def test_prompts_grown_thirty_times_longer_and_in_another_language_are_caught(
    broker: EmbeddedBroker, topic: str, engine: Engine, tmp_path: Path
) -> None:
    rng = random.Random(5)
    with _agent(broker, topic, tmp_path) as agent:
        worker = _worker_with_baseline(
            engine, agent, [chat(prompt(rng), answer(rng), rng) for _ in range(1_000)]
        )
        with Session(engine) as session:
            record = active_baseline(session, CHAT.name, CHAT.version)
        assert record is not None
        features = record_features(record.record)
        assert features["prompt.characters"] == "continuous"
        assert features["prompt.language"] == "categorical"
        assert features["(usage).input_tokens"] == "continuous"
        assert features["(output).refusal"] == "categorical"

        store(engine, [chat(prompt(rng), answer(rng), rng) for _ in range(500)])
        assert worker.check_all() == []  # the same service: no alarm

        longer = [" ".join([prompt(rng)] * 30) for _ in range(500)]
        store(engine, [chat(text, answer(rng), rng) for text in longer])
        raised = {t.verdict.feature for t in worker.check_all() if t.state == "detected"}
        assert {"prompt.characters", "prompt.words", "(usage).input_tokens"} <= raised

        french = [f"{rng.choice(FRENCH)} de {rng.randrange(5, 500)} euros ?" for _ in range(500)]
        store(engine, [chat(text, answer(rng), rng) for text in french])
        also = {t.verdict.feature for t in worker.check_all() if t.state == "detected"}
        assert "prompt.non_ascii_share" in also
        # Long English texts are told apart from short ones too (py3langid is surer of them):
        # the language drifts in one of the two windows, and is not raised twice.
        assert "prompt.language" in raised | also
        assert agent.flush(timeout_s=30).ok


def test_refusals_truncations_and_what_the_redaction_found_are_caught(
    broker: EmbeddedBroker, topic: str, engine: Engine, tmp_path: Path
) -> None:
    rng = random.Random(6)
    with _agent(broker, topic, tmp_path) as agent:
        worker = _worker_with_baseline(
            engine, agent, [chat(prompt(rng), answer(rng), rng) for _ in range(1_000)]
        )
        refusing = [
            chat(prompt(rng), "I'm sorry, but I can't help with that.", rng, "length")
            if n % 4 == 0
            else chat(prompt(rng), f"Write to [email] or call [phone]#{n}.", rng)
            for n in range(500)
        ]
        store(engine, refusing)
        raised = {t.verdict.feature for t in worker.check_all() if t.state == "detected"}
        assert {"(output).refusal", "(finish-reason)", "(output).detections"} <= raised
        assert agent.flush(timeout_s=30).ok


def test_refusal_phrases_are_a_setting_that_each_baseline_keeps(
    broker: EmbeddedBroker, topic: str, engine: Engine, tmp_path: Path
) -> None:
    """A service whose refusals are its own words: the worker's setting names them, the
    baseline it fits keeps them, and a window is described with the baseline's phrases (a
    worker set otherwise since does not describe it anew)."""
    rng = random.Random(8)
    first = [chat(prompt(rng), answer(rng), rng) for _ in range(1_000)]
    own = ["Outside my remit"]
    with _agent(broker, topic, tmp_path) as agent:
        settings = CollectorSettings(detect_baseline_first=1_000, detect_refusal_phrases=own)
        store(engine, first)
        assert DetectorWorker(engine, agent, settings).check_all() == []
        assert agent.flush(timeout_s=30).ok
        (fitted,) = [decode(r.value) for r in read_topic(broker.bootstrap_servers, topic, 1)]
        assert isinstance(fitted, BaselineSetEvent)
        assert fitted.payload.record["refusals"] == own

        store(engine, [fitted])
        worker = DetectorWorker(engine, agent, _checking())  # the built-in phrases
        refusing = [
            chat(prompt(rng), "Outside my remit, sorry." if n % 4 == 0 else answer(rng), rng)
            for n in range(500)
        ]
        store(engine, refusing)
        raised = {t.verdict.feature for t in worker.check_all() if t.state == "detected"}
        assert "(output).refusal" in raised
        assert agent.flush(timeout_s=30).ok


def test_a_refusal_phrase_setting_is_refused_naming_the_phrase() -> None:
    with pytest.raises(ValidationError, match=r"detect_refusal_phrases[\s\S]*phrase 2"):
        CollectorSettings(detect_refusal_phrases=["fine", "nul\u0000"])
    with pytest.raises(ValidationError, match="phrase 1"):
        CollectorSettings(detect_refusal_phrases=["   "])
    assert CollectorSettings(detect_refusal_phrases=[]).detect_refusal_phrases == ()
    with pytest.raises(ValidationError, match="8 KiB in all"):  # each baseline keeps them
        CollectorSettings(detect_refusal_phrases=["\U0001f600" * 200] * 11)


COOKING = ["bake", "roast", "season", "simmer", "grill", "whisk", "slice", "boil"]
DISHES = ["bread", "chicken", "risotto", "salmon", "pancakes", "soup", "lasagna", "curry"]


def cooking(rng: random.Random) -> str:
    """A cooking question as long as a billing one, in the same frame: only the words differ."""
    month = rng.choice(["January", "March", "June", "October"])
    return (
        f"How do I {rng.choice(COOKING)} my {rng.choice(DISHES)} for {month}? "
        f"It says {rng.randrange(5, 500)} minutes."
    )


def test_a_change_of_topic_is_caught_by_the_text_check_naming_the_words(
    broker: EmbeddedBroker, topic: str, engine: Engine, tmp_path: Path
) -> None:
    rng = random.Random(7)
    with _agent(broker, topic, tmp_path) as agent:
        worker = _worker_with_baseline(
            engine, agent, [chat(prompt(rng), answer(rng), rng) for _ in range(1_000)]
        )
        store(engine, [chat(prompt(rng), answer(rng), rng) for _ in range(500)])
        assert worker.check_all() == []
        mixed = [cooking(rng) if n % 3 == 0 else prompt(rng) for n in range(500)]
        store(engine, [chat(text, answer(rng), rng) for text in mixed])
        raised = [t.verdict for t in worker.check_all() if t.state == "detected"]
        (text,) = [v for v in raised if v.test == "domain-classifier"]
        assert text.feature == "prompt" and text.effect > 0.1
        assert any("'minutes'" in line for line in text.evidence), text.evidence
        assert any("'euros'" in line for line in text.evidence)  # fell, named too
        assert agent.flush(timeout_s=30).ok
    sent = [decode(r.value) for r in read_topic(broker.bootstrap_servers, topic, len(raised))]
    (event,) = [
        e
        for e in sent
        if isinstance(e, DriftDetectedEvent) and e.payload.test == "domain-classifier"
    ]
    assert event.payload.evidence == list(text.evidence)
    store(engine, sent)
    with Session(engine) as session:
        (row,) = session.exec(
            select(DriftVerdict).where(DriftVerdict.test == "domain-classifier")
        ).all()
    assert row.evidence == list(text.evidence)


def test_a_baseline_of_long_texts_still_fits_in_one_event(engine: Engine) -> None:
    rng = random.Random(8)
    long = [chat(" ".join(prompt(rng) for _ in range(60)), answer(rng), rng) for _ in range(1_000)]
    store(engine, long)
    with Session(engine) as session:
        fitted = fit_first_decisions(session, CHAT.name, CHAT.version, 1_000)
    assert fitted is not None
    payload = baseline_payload(fitted, version=CHAT.version, set_by="ml-lead")
    event = component_event("baseline_set", payload, service="driftline-detector", model=CHAT)
    assert len(wire_bytes(event)) <= MAX_EVENT_BYTES
    kept = fitted.baseline.texts["prompt"]
    assert 20 <= len(kept) < 1_000 and all(len(t) <= 2_000 for t in kept)


def judged(
    rng: random.Random, decision: Event, faithful: tuple[float, float], toxic: float
) -> Event:
    scores = [
        Score(name="faithfulness", value=round(rng.uniform(*faithful), 3), source="model"),
        Score(name="toxic", value=rng.random() < toxic, source="rule"),
        Score(name="tone", value=rng.choice(["warm", "curt"]), source="human"),
    ]
    return events.feedback(
        decision.decision_id, model=CHAT, payload=FeedbackPayload(reporter="judge", scores=scores)
    )


def test_named_scores_drift_against_those_of_the_baselines_period(
    broker: EmbeddedBroker, topic: str, engine: Engine, tmp_path: Path
) -> None:
    """Scores arrive after their decisions: the reference is read from the store, from the
    decisions taken before the baseline was set; the page shows each score's distribution."""
    rng = random.Random(9)
    first = [chat(prompt(rng), answer(rng), rng) for _ in range(1_000)]
    with _agent(broker, topic, tmp_path) as agent:
        store(engine, [judged(rng, d, (0.7, 1.0), 0.01) for d in first[::2]])
        worker = _worker_with_baseline(engine, agent, first)
        same = [chat(prompt(rng), answer(rng), rng) for _ in range(500)]
        store(engine, [*same, *(judged(rng, d, (0.7, 1.0), 0.01) for d in same[::2])])
        assert worker.check_all() == []
        worse = [chat(prompt(rng), answer(rng), rng) for _ in range(500)]
        store(engine, [*worse, *(judged(rng, d, (0.3, 0.8), 0.2) for d in worse[::2])])
        raised = {
            (t.verdict.feature, t.verdict.test) for t in worker.check_all() if t.state == "detected"
        }
        assert {("score:faithfulness", "ks"), ("score:faithfulness", "mean-shift"),
                ("score:toxic", "flag-rate")} <= raised  # fmt: skip
        assert not any(feature.startswith("score:tone") for feature, _ in raised)
        assert agent.flush(timeout_s=30).ok
    with Session(engine) as session:
        page = version_drift(session, model=CHAT.name, version=CHAT.version, now=datetime.now(UTC))
    assert page is not None
    shown = {f.feature: f for f in page.features}
    assert shown["score:faithfulness"].kind == "score" and shown["score:faithfulness"].plot
    assert shown["score:toxic"].plot is not None


def test_each_named_score_has_a_daily_mean_with_its_interval_on_the_drift_page(
    engine: Engine,
) -> None:
    """By the day of the decision (a score arrives later): the mean of a number with Student's
    interval, a flag's share with Wilson's, a day of one score with none, a label not at all."""
    rng = random.Random(10)
    today = datetime.now(UTC).replace(hour=0, minute=30, second=0, microsecond=0)
    days = [today - timedelta(days=k) for k in (3, 2, 1)]
    decisions = [  # 20, 20 and 1 a day
        chat(prompt(rng), answer(rng), rng).model_copy(
            update={"occurred_at": days[min(n // 20, 2)]}
        )
        for n in range(41)
    ]
    quality = [0.9] * 10 + [0.7] * 10 + [0.4] * 10 + [0.6] * 10 + [0.5]
    feedback = [
        events.feedback(d.decision_id, model=CHAT, payload=_rated(q, toxic=n % 4 == 0))
        for n, (d, q) in enumerate(zip(decisions, quality, strict=True))
    ]
    store(engine, [*decisions, *feedback])
    with Session(engine) as session:
        trend = score_trend(session, CHAT.name, CHAT.version, days[1] - timedelta(minutes=30))
    assert set(trend) == {"score:quality", "score:toxic"}
    second, third = trend["score:quality"]  # the 28th is before ``since``
    assert (second.day, second.count) == (days[1].date(), 20)
    assert second.mean == pytest.approx(0.5)
    assert second.low == pytest.approx(0.5 - 2.093 * 0.1026 / 20**0.5, abs=1e-3)
    assert (third.count, third.mean, third.low, third.high) == (1, 0.5, None, None)
    toxic = trend["score:toxic"][0]
    assert toxic.mean == 0.25 and toxic.low == pytest.approx(0.1119, abs=1e-3)
    assert toxic.high == pytest.approx(0.4687, abs=1e-3)  # Wilson's, 5 of 20

    with Session(engine) as session:
        fitted = fit_first_decisions(session, CHAT.name, CHAT.version, 41)
    assert fitted is not None
    payload = baseline_payload(fitted, version=CHAT.version, set_by="ml-lead")
    store(engine, [BaselineSetEvent(service="ml-lead", model=CHAT, payload=payload)])
    app = create_app(engine, keys=KeyRing.of(Ed25519PrivateKey.generate()))
    with TestClient(app, base_url=SITE, follow_redirects=False) as browser:
        sign_in(browser, new_token(engine, "auditor"))
        drift = browser.get(f"/ui/drift/{CHAT.name}/{CHAT.version}")
    assert drift.status_code == 200
    shown = " ".join(unescape(re.sub(r"<[^>]+>", " ", drift.text)).split())
    assert f"{days[1].date().isoformat()} 20 0.5 0.452 to 0.548" in shown
    assert f"{days[2].date().isoformat()} 1 0.5 —" in shown


def _rated(quality: float, *, toxic: bool) -> FeedbackPayload:
    scores = [
        Score(name="quality", value=quality, source="model"),
        Score(name="toxic", value=toxic, source="rule"),
        Score(name="tone", value="warm", source="human"),
    ]
    return FeedbackPayload(reporter="judge", scores=scores)


def embedded(rng: random.Random, shift: float, dimensions: int = 16) -> Event:
    vector = [rng.gauss(shift if n < 4 else 0.0, 1.0) for n in range(dimensions)]
    decision = chat(prompt(rng), answer(rng), rng)
    payload = decision.payload.model_copy(  # type: ignore[union-attr]
        update={"embeddings": Embeddings(model="e5", dimensions=dimensions, input=vector)}
    )
    return decision.model_copy(update={"payload": payload})


def test_embeddings_that_moved_are_caught_from_the_ledger_and_another_dimension_is_said(
    broker: EmbeddedBroker, topic: str, engine: Engine, tmp_path: Path
) -> None:
    rng = random.Random(10)
    with _agent(broker, topic, tmp_path) as agent:
        worker = _worker_with_baseline(engine, agent, [embedded(rng, 0.0) for _ in range(1_000)])
        store(engine, [embedded(rng, 0.0) for _ in range(500)])
        assert worker.check_all() == []
        store(engine, [embedded(rng, 0.6) for _ in range(500)])
        raised = [t.verdict for t in worker.check_all() if t.state == "detected"]
        (moved,) = [v for v in raised if v.feature == "(embedding).input"]
        assert moved.test == "domain-classifier" and moved.effect > 0.1
        assert moved.evidence[0].startswith("the centroid moved ")
        assert "(16 dimensions)" in moved.evidence[0]
        # Another embedding model, of another dimension: no verdict, and no crash.
        store(engine, [embedded(rng, 0.0, dimensions=8) for _ in range(500)])
        worker.check_all()
        assert agent.flush(timeout_s=30).ok


PREAMBLE = "You are the billing assistant of Example Ltd. " * 50  # about 2,300 characters


def test_prompts_longer_than_the_excerpt_behind_a_long_system_prompt_raise_nothing(
    broker: EmbeddedBroker, topic: str, engine: Engine, tmp_path: Path
) -> None:
    """Baseline and window texts are cut alike (start and end): a window cut at 10,000 against
    a baseline cut at 2,000 alarmed on every check; the question at the end is still read."""
    rng = random.Random(12)
    with _agent(broker, topic, tmp_path) as agent:
        first = [chat(PREAMBLE + prompt(rng), answer(rng), rng) for _ in range(1_000)]
        worker = _worker_with_baseline(engine, agent, first)
        for _ in range(3):
            store(engine, [chat(PREAMBLE + prompt(rng), answer(rng), rng) for _ in range(500)])
            assert worker.check_all() == []
        mixed = [PREAMBLE + (cooking(rng) if n % 3 == 0 else prompt(rng)) for n in range(500)]
        store(engine, [chat(text, answer(rng), rng) for text in mixed])
        raised = {t.verdict.test for t in worker.check_all() if t.verdict.feature == "prompt"}
        assert "domain-classifier" in raised
        assert agent.flush(timeout_s=30).ok


def test_many_long_text_inputs_still_fit_in_one_event(engine: Engine) -> None:
    rng = random.Random(13)
    many = []
    for _ in range(300):
        inputs = {f"document_{k}": " ".join(prompt(rng) for _ in range(30)) for k in range(30)}
        decision = chat(prompt(rng), answer(rng), rng)
        payload = decision.payload.model_copy(update={"inputs": inputs})  # type: ignore[union-attr]
        many.append(decision.model_copy(update={"payload": payload}))
    store(engine, many)
    with Session(engine) as session:
        fitted = fit_first_decisions(session, CHAT.name, CHAT.version, 300)
    assert fitted is not None
    payload = baseline_payload(fitted, version=CHAT.version, set_by="ml-lead")
    event = component_event("baseline_set", payload, service="driftline-detector", model=CHAT)
    assert len(wire_bytes(event)) <= MAX_EVENT_BYTES  # 1.9 MB before
    kept = fitted.baseline.texts  # too many long texts for the text check: none kept, or some
    assert not kept or min(len(texts) for texts in kept.values()) >= 20


def test_a_lone_surrogate_in_a_baseline_text_is_replaced() -> None:
    """The store never holds one (no canonical JSON has it), but the detectors' own callers may
    pass one: the baseline's event must still go."""
    rng = random.Random(14)
    texts = ["broken \ud800 text", *(prompt(rng) for _ in range(99))]
    baseline = fit_baseline({"x": list(range(100))}).with_texts({"prompt": texts})
    fitted = for_one_event(baseline, "test")
    payload = baseline_payload(fitted, version=CHAT.version, set_by="ml-lead")
    event = component_event("baseline_set", payload, service="driftline-detector", model=CHAT)
    assert len(wire_bytes(event)) <= MAX_EVENT_BYTES  # wire_bytes raised on the surrogate
    assert "broken \ufffd text" in fitted.baseline.texts["prompt"]


def test_a_score_that_changes_kind_is_no_drift() -> None:
    kinds: dict[str, str] = {}
    before = _values([[{"name": "s", "kind": "boolean", "value": True}]], kinds)
    now = _values([[{"name": "s", "kind": "numeric", "value": 0.5}]], kinds)
    assert before == {"s": [True]} and now == {}
