"""The accountability page in a real browser: models without an entry first, each decision
type's accountable person, escalation path, audit trail and reviews, gaps marked on their rows;
a challenged decision's page shows where it escalates, or that nothing covers it. Names that
hold markup are shown as text, never run. The real app on loopback, over a store filled
directly (the demo configures no accountability map)."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlmodel import Session

from driftline.agent.contract import DecisionPayload, Event, ModelRef, encode
from driftline.collector.audit.integrity import KeyRing
from driftline.collector.consume.ingest import RawMessage, write_batch
from driftline.collector.golive.accountability import AccountabilityMap
from driftline.collector.store.database import make_engine, migrate
from driftline.collector.web.api.app import create_app
from tests import events
from tests.api_client import new_token
from tests.ui.conftest import RunningSystem, WatchedPage, serve_app, sign_in

TODAY = datetime.now(UTC).date()
SCRIPT = '<script>document.title="owned"</script>'
IMAGE = "<img src=x onerror=\"document.title='owned'\">"
UNMAPPED = ModelRef(name=f"fraud{SCRIPT}", version="1")
MAP = AccountabilityMap.model_validate(
    {
        "decision_types": [
            {
                "model": "credit-risk",
                "output": "decline",
                "accountable": "head-of-credit-risk",
                "escalation": ["risk-oncall", IMAGE, "chief-risk-officer"],
                "audit_trail": f"every decision in the ledger {SCRIPT}",
                "reviewed_on": TODAY - timedelta(days=3),
                "reviewed_by": "model-risk-committee",
            },
            {
                "model": "credit-risk",
                "escalation": ["risk-oncall"],
                "reviewed_on": TODAY - timedelta(days=400),
            },
        ]
    }
)


class Served:
    def __init__(self, system: RunningSystem, overridden: str, unmapped_wrong: str) -> None:
        self.system, self.overridden, self.unmapped_wrong = system, overridden, unmapped_wrong


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    directory = tmp_path_factory.mktemp("accountability-page")
    database_url = f"sqlite:///{directory / 'driftline.db'}"
    engine = make_engine(database_url)
    migrate(engine)
    declined = events.decision(
        payload=DecisionPayload(
            inputs={"income": 1}, output="decline", confidence=0.6, latency_ms=3.0, automated=False
        )
    )
    wrong = events.decision(model=UNMAPPED)
    batch: list[Event] = [
        declined,
        events.review(declined.decision_id, payload=events.review(declined.decision_id).payload),
        wrong,
        events.feedback(wrong.decision_id, model=UNMAPPED),
    ]
    with Session(engine) as session:
        write_batch(session, [RawMessage("e", 0, n, None, encode(e)) for n, e in enumerate(batch)])
        session.commit()
    app = create_app(engine, keys=KeyRing.of(Ed25519PrivateKey.generate()), accountability=MAP)
    with serve_app(app) as url:
        system = RunningSystem(
            url=url,
            database_url=database_url,
            operator_token=new_token(engine, "operator"),
            auditor_token=new_token(engine, "auditor"),
        )
        yield Served(system, str(declined.decision_id), str(wrong.decision_id))
    engine.dispose()


def never_runs_markup(watched: WatchedPage) -> None:
    page = watched.page
    assert page.title() != "owned"
    assert page.locator("main script, main img").count() == 0


def test_an_auditor_sees_models_without_entry_first_and_gaps_marked(
    watched: WatchedPage, served: Served
) -> None:
    page = watched.page
    page.on("dialog", lambda dialog: watched.problems.append(f"a dialog: {dialog.message}"))
    sign_in(watched, served.system, served.system.auditor_token)
    page.get_by_role("link", name="Accountability").click()
    page.wait_for_url("**/ui/accountability")
    assert page.get_by_role("link", name="Accountability").get_attribute("aria-current") == "page"
    headings = page.locator("main h2").all_inner_texts()
    assert headings == ["Models without an entry", "Decision types"]
    (unmapped,) = page.locator("ul.gaps li.gap").all()
    assert f"fraud{SCRIPT}" in unmapped.inner_text() and "gap" in unmapped.inner_text()

    complete, gapped = page.locator("tbody tr").all()
    assert complete.get_attribute("class") == "complete"
    assert complete.locator("ol.path li").all_inner_texts() == [
        "risk-oncall",
        IMAGE,
        "chief-risk-officer",
    ]
    assert SCRIPT in complete.inner_text() and "model-risk-committee" in complete.inner_text()
    next_review = (TODAY - timedelta(days=3) + timedelta(days=180)).isoformat()
    assert next_review in complete.inner_text()
    assert gapped.get_attribute("class") == "gap"
    marked = gapped.locator("td").last.inner_text()
    assert "no accountable person" in marked and "no audit trail" in marked
    assert "review overdue" in marked and gapped.locator(".badge.gap").count() == 3
    assert "1 with gaps" in page.get_by_role("status").inner_text()
    never_runs_markup(watched)
    watched.shot("accountability")

    page.set_viewport_size({"width": 390, "height": 844})
    overflow = page.evaluate("document.body.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow} px wider than a phone"
    watched.shot("accountability-narrow")


def test_a_challenged_decision_shows_where_it_escalates(
    watched: WatchedPage, served: Served
) -> None:
    page = watched.page
    sign_in(watched, served.system, served.system.auditor_token)
    page.goto(f"{served.system.url}/ui/decisions/{served.overridden}")
    section = page.get_by_role("region", name="Escalation path")
    assert "overridden by a.kim" in section.inner_text()
    assert "credit-risk, output decline" in section.inner_text()
    assert section.locator("ol.path li").all_inner_texts() == [
        "risk-oncall",
        IMAGE,
        "chief-risk-officer",
    ]
    never_runs_markup(watched)
    watched.shot("challenged")

    page.goto(f"{served.system.url}/ui/decisions/{served.unmapped_wrong}")
    section = page.get_by_role("region", name="Escalation path")
    assert "reported wrong by collections" in section.inner_text()
    assert "No entry of the accountability map covers this decision" in section.inner_text()
    assert section.get_attribute("class") == "challenge gap"
    never_runs_markup(watched)
    watched.shot("challenged-unmapped")


def test_a_decision_nobody_challenged_shows_no_escalation(
    watched: WatchedPage, served: Served
) -> None:
    engine = make_engine(served.system.database_url)
    fine = events.decision()
    with Session(engine) as session:
        write_batch(session, [RawMessage("e", 1, 0, None, encode(fine))])
        session.commit()
    engine.dispose()
    sign_in(watched, served.system, served.system.auditor_token)
    watched.page.goto(f"{served.system.url}/ui/decisions/{fine.decision_id}")
    assert watched.page.get_by_role("region", name="Escalation path").count() == 0


def test_the_html_escapes_every_name(served: Served) -> None:
    bearer = {"Authorization": f"Bearer {served.system.auditor_token}"}
    for path in ("/ui/accountability", f"/ui/decisions/{served.overridden}"):
        html = httpx.get(f"{served.system.url}{path}", headers=bearer).text
        assert "<script>document" not in html and "<img src=x" not in html, path
        assert "&lt;img src=x onerror=" in html, path
    html = httpx.get(f"{served.system.url}/ui/accountability", headers=bearer).text
    assert "fraud&lt;script&gt;document.title=&#34;owned&#34;&lt;/script&gt;" in html
