"""The go-live page in a real browser: each version's clock and agreed thresholds (a changed
file shown as a proposal), its latest evaluation runs with the pass rate per tag and the
regression from the previous version, the gaps of its data contract and accountability map,
and what the gate last found short. Names that hold markup are shown as text, never run. The
real app on loopback, over a store filled with real runs of the shipped example set."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from driftline.agent.contract import ModelDeployedPayload
from driftline.collector.audit.integrity import KeyRing
from driftline.collector.golive.agreements import agreement_payload
from driftline.collector.golive.thresholds import ReadinessConfig, Threshold
from driftline.collector.runtime.simulation import decide, decide_changed
from driftline.collector.store.database import make_engine, migrate
from driftline.collector.web.api.app import create_app
from tests.api_client import new_token
from tests.readiness.test_gate_agreement import record_run, store
from tests.ui.conftest import RunningSystem, WatchedPage, serve_app, sign_in

NOW = datetime.now(UTC)
SCRIPT = '<script>document.title="owned"</script>'
AGREED = Threshold(model="credit-risk", min_decisions=100)
FILE = ReadinessConfig(thresholds=[AGREED.model_copy(update={"min_decisions": 900})])


@pytest.fixture
def system(tmp_path: Path) -> Iterator[RunningSystem]:
    """Function-scoped: the events are signed with the test's producer key."""
    directory = tmp_path
    database_url = f"sqlite:///{directory / 'driftline.db'}"
    engine = make_engine(database_url)
    migrate(engine)
    agreed = agreement_payload(
        AGREED, version="*", decision_maker=f"head{SCRIPT}", deadline=NOW + timedelta(days=60),
        source="thresholds.yaml",
    )  # fmt: skip
    store(engine, [("thresholds_agreed", agreed, "*", NOW - timedelta(days=30))])
    record_run(engine, "3.1.0", decide, NOW - timedelta(days=2))
    record_run(engine, "3.2.0", decide_changed, NOW - timedelta(days=1))
    deployed = ModelDeployedPayload(version="1", owner="o", approved_by="a")
    store(engine, [("model_deployed", deployed, "1", NOW - timedelta(hours=1))])
    app = create_app(
        engine, keys=KeyRing.of(Ed25519PrivateKey.generate()), thresholds=FILE, contracts=None,
    )  # fmt: skip
    with serve_app(app) as url:
        yield RunningSystem(
            url=url, database_url=database_url, operator_token=new_token(engine, "operator"),
            auditor_token=new_token(engine, "auditor"),
        )  # fmt: skip
    engine.dispose()


def test_each_version_shows_its_clock_runs_regression_and_gaps(
    watched: WatchedPage, system: RunningSystem
) -> None:
    page = watched.page
    sign_in(watched, system, system.auditor_token)
    page.get_by_role("link", name="Go-live").click()
    page.wait_for_url("**/ui/golive")
    assert page.locator("main h2").all_inner_texts() == [
        "credit-risk 1", "credit-risk 3.2.0", "credit-risk 3.1.0",
    ]  # fmt: skip
    newest, changed, live = page.locator("section.version").all()
    assert "day 31 of 90" in live.inner_text()
    assert f"agreed by head{SCRIPT}" in live.inner_text()
    assert "the thresholds file proposes a change, not agreed" in live.inner_text()
    assert "passed" in live.inner_text() and "96.7%" in live.inner_text()
    assert "high-debt: 77.8%" in changed.inner_text()
    assert "from 3.1.0: 96.7% → 89.3%; 14 newly failing" in changed.inner_text()
    assert "refusal_recall" in changed.inner_text()
    assert "no evaluation run recorded" in newest.inner_text()
    gaps = live.locator("ul.gaps li").all_inner_texts()
    assert any("data contract: none for this model (no file)" in g for g in gaps)
    assert any("accountability: no map is configured" in g for g in gaps)
    assert page.title() != "owned" and page.locator("main script").count() == 0
    watched.shot("golive")

    page.set_viewport_size({"width": 390, "height": 844})
    overflow = page.evaluate("document.body.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow} px wider than a phone"


def test_the_html_escapes_every_name(system: RunningSystem) -> None:
    bearer = {"Authorization": f"Bearer {system.auditor_token}"}
    html = httpx.get(f"{system.url}/ui/golive", headers=bearer).text
    assert "<script>document" not in html
    assert "head&lt;script&gt;document.title=&#34;owned&#34;&lt;/script&gt;" in html
    assert httpx.get(f"{system.url}/ui/golive").status_code in (401, 303)  # no token: no page


def test_an_example_path_is_real() -> None:
    assert (Path(__file__).parents[2] / "deploy/config/examples/readiness.yaml").is_file()
