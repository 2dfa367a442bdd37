"""What an on-call engineer and an auditor do on the web page, in a real browser, against the
real system the demo filled: sign in, see the drifting model, its plot, silence its alert;
find an overridden decision, open its lineage, export; and what a wrong token never shows."""

import json

import httpx
import pytest

from tests.ui.conftest import RunningSystem, WatchedPage, sign_in


def test_on_call_sees_the_drift_plots_the_shift_and_silences_its_alert(
    watched: WatchedPage, system: RunningSystem
) -> None:
    page = watched.page
    sign_in(watched, system, system.operator_token)
    row = page.locator("tr", has_text="credit-risk")
    assert "drifting" in row.inner_text() and "debt_ratio" in row.inner_text()
    watched.shot("overview")

    row.get_by_role("link", name="drifting").click()
    page.wait_for_url("**/ui/drift/credit-risk/3.1.0")
    shifted = page.locator("section.feature", has_text="debt_ratio").first
    assert "drifting" in shifted.locator("h3").inner_text()
    plot = shifted.locator('svg[data-feature="debt_ratio"]')
    assert plot.locator("rect.series-current").count() > 1  # bars of the current window
    assert "baseline against current" in (plot.locator("title").first.text_content() or "")
    assert page.locator('svg[data-feature="confidence"]').count() == 1
    watched.shot("drift")

    shifted.get_by_role("link", name="Silence its alert").click()
    page.wait_for_url("**/ui/alerts?**")
    assert page.locator("#matchers").input_value().splitlines() == [
        'model="credit-risk"',
        'feature="debt_ratio"',
    ]
    page.locator("#comment").fill("known shift, new lending policy")
    page.get_by_role("button", name="Silence", exact=True).click()
    page.wait_for_url("**/ui/alerts")
    silence = page.locator("tr", has_text="known shift, new lending policy")
    assert "active" in silence.inner_text() and "ui-operator" in silence.inner_text()
    watched.shot("silenced")

    silence.get_by_role("button", name="Expire").click()
    page.wait_for_url("**/ui/alerts")
    assert "expired" in page.locator("tr", has_text="known shift").inner_text()


def test_an_auditor_finds_an_overridden_decision_sees_its_lineage_and_exports(
    watched: WatchedPage, system: RunningSystem
) -> None:
    page = watched.page
    sign_in(watched, system, system.auditor_token)
    page.get_by_role("link", name="Audit").click()
    page.get_by_label("Review", exact=True).select_option("override")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url("**review_action=override**")
    watched.shot("search")

    first = page.locator("tbody tr").first.get_by_role("link")
    decision_id = first.inner_text()
    first.click()
    page.wait_for_url(f"**/ui/decisions/{decision_id}")
    assert "overrides it with" in page.locator("ol.timeline").first.inner_text()
    badge = page.locator(".verification")
    assert badge.get_attribute("class") == "verification verified", badge.inner_text()
    watched.shot("lineage")

    page.go_back()
    with page.expect_download() as download:
        page.get_by_role("link", name="JSON Lines").click()
    lines = download.value.path().read_text().splitlines()
    exported = [json.loads(line) for line in lines]
    assert exported and all(row["decision_id"] for row in exported)
    assert any(row["decision_id"] == decision_id for row in exported)


def test_an_auditor_never_sees_the_silence_controls(
    watched: WatchedPage, system: RunningSystem
) -> None:
    page = watched.page
    sign_in(watched, system, system.auditor_token)
    page.goto(f"{system.url}/ui/drift/credit-risk/3.1.0")
    assert page.get_by_role("link", name="Silence its alert").count() == 0
    page.goto(f"{system.url}/ui/alerts")
    assert page.locator("form[action='/ui/silences']").count() == 0
    assert page.get_by_role("button", name="Expire").count() == 0
    watched.shot("auditor-alerts")
    refused = page.request.post(
        f"{system.url}/ui/silences",
        form={"matchers": 'model="credit-risk"', "duration": "1h", "comment": "x"},
    )
    assert refused.status == 403


@pytest.mark.parametrize("token", [None, "dl_not-a-token"])
def test_a_wrong_or_missing_token_never_shows_data(
    watched: WatchedPage, system: RunningSystem, token: str | None
) -> None:
    page = watched.page
    if token is not None:
        page.context.add_cookies([{"name": "driftline_token", "value": token, "url": system.url}])
    for path in ("/ui/", "/ui/audit", "/ui/drift/credit-risk/3.1.0", "/ui/alerts"):
        page.goto(f"{system.url}{path}")
        assert page.url.endswith("/ui/login")
        assert "credit-risk" not in page.content()
    page.locator("#token").fill(token or "dl_wrong")
    page.locator("#token").press("Enter")
    assert "Not signed in" in page.get_by_role("alert").inner_text()
    assert "credit-risk" not in page.content()
    watched.shot("refused")
    # The refusal is a 401, which Chromium logs as a console error: expected here, and only it.
    refusals = [p for p in watched.problems if "status of 401" in p]
    assert len(refusals) == 1, watched.problems
    watched.problems.remove(refusals[0])
    assert httpx.get(f"{system.url}/decisions", cookies={"driftline_token": "x"}).status_code == 401


def test_pages_read_on_a_narrow_window(watched: WatchedPage, system: RunningSystem) -> None:
    page = watched.page
    sign_in(watched, system, system.operator_token)
    page.set_viewport_size({"width": 390, "height": 844})
    for path in ("/ui/drift/credit-risk/3.1.0", "/ui/audit"):
        page.goto(f"{system.url}{path}")
        overflow = page.evaluate("document.body.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{path} is {overflow} px wider than a phone"
        watched.shot("narrow")
