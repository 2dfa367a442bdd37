"""The web page against a browser's neighbours: it cannot be framed, sniffed, cached or told
where it was; its forms refuse a post from another origin; signing out ends the session on the
server, so a copied cookie stops working. Its audit search pages through every decision. The
real app in-process, over HTTPS as the Secure cookie needs, on SQLite and PostgreSQL."""

import base64
import json
import re
import uuid
from collections.abc import Iterator
from html import unescape

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from driftline.agent.contract import encode
from driftline.collector.audit.integrity import KeyRing
from driftline.collector.consume.ingest import RawMessage, write_batch
from driftline.collector.store.models import Silence
from driftline.collector.web.api.app import create_app
from driftline.collector.web.api.auth import SESSION_COOKIE
from tests import events
from tests.api_client import new_token

SITE = "https://driftline.example"
ELSEWHERE = "https://evil.example"


@pytest.fixture
def browser(engine: Engine) -> Iterator[TestClient]:
    app = create_app(engine, keys=KeyRing.of(Ed25519PrivateKey.generate()))
    with TestClient(app, base_url=SITE, follow_redirects=False) as client:
        yield client


def sign_in(browser: TestClient, token: str) -> str:
    answer = browser.post("/ui/login", data={"token": token}, headers={"Origin": SITE})
    assert answer.status_code == 303, answer.text
    cookie = browser.cookies.get(SESSION_COOKIE)
    assert isinstance(cookie, str)
    return cookie


def test_pages_forbid_framing_sniffing_caching_and_referrers(
    engine: Engine, browser: TestClient
) -> None:
    sign_in(browser, new_token(engine, "operator"))
    for path in ("/ui/login", "/ui/", "/ui/alerts", "/ui/audit", "/ui/nowhere"):
        headers = browser.get(path).headers
        assert headers["X-Frame-Options"] == "DENY", path
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"], path
        assert headers["X-Content-Type-Options"] == "nosniff", path
        assert headers["Cache-Control"] == "no-store", path
        assert headers["Referrer-Policy"] == "same-origin", path
    browser.cookies.clear()
    refused = browser.get("/ui/audit")  # a redirect to the login form carries them too
    assert refused.status_code == 303 and refused.headers["X-Frame-Options"] == "DENY"
    static = browser.get("/ui/static/driftline.css").headers
    assert static["X-Content-Type-Options"] == "nosniff" and "no-store" not in static.get(
        "Cache-Control", ""
    )


def test_a_form_posted_from_another_origin_is_refused(engine: Engine, browser: TestClient) -> None:
    token = new_token(engine, "operator")
    for headers in (
        {"Origin": ELSEWHERE},
        {"Origin": "null"},  # a sandboxed frame, or a redirect across origins
        {"Referer": f"{ELSEWHERE}/login-for-you"},
        {"Sec-Fetch-Site": "cross-site", "Origin": "null"},
        {"Sec-Fetch-Site": "same-site", "Origin": "null"},  # a sibling subdomain
    ):
        answer = browser.post("/ui/login", data={"token": token}, headers=headers)
        assert answer.status_code == 403, headers
        assert SESSION_COOKIE not in browser.cookies  # no session forced on the victim
    sign_in(browser, token)
    silence = {"matchers": 'model="m"', "duration": "1h", "comment": "deploy"}
    forged = browser.post("/ui/silences", data=silence, headers={"Origin": ELSEWHERE})
    assert forged.status_code == 403
    by_referer = browser.post(
        "/ui/silences", data=silence, headers={"Referer": f"{ELSEWHERE}/page"}
    )
    assert by_referer.status_code == 403
    with Session(engine) as session:
        assert session.exec(select(Silence)).all() == []
    made = browser.post("/ui/silences", data=silence, headers={"Origin": SITE})
    assert made.status_code == 303
    with Session(engine) as session:
        (stored,) = session.exec(select(Silence)).all()
    expire = f"/ui/silences/{stored.id}/expire"
    assert browser.post(expire, headers={"Origin": ELSEWHERE}).status_code == 403
    assert browser.post("/ui/logout", headers={"Origin": ELSEWHERE}).status_code == 403
    assert browser.get("/ui/alerts").status_code == 200  # still signed in
    # As a browser posts a form of the page: the fetch metadata says where it comes from
    # (whatever Origin says).
    from_the_page = browser.post(
        expire, headers={"Sec-Fetch-Site": "same-origin", "Origin": "null"}
    )
    assert from_the_page.status_code == 303
    by_same_referer = browser.post("/ui/logout", headers={"Referer": f"{SITE}/ui/alerts"})
    assert by_same_referer.status_code == 303


def test_signing_out_ends_the_session_so_a_copied_cookie_stops_working(
    engine: Engine, browser: TestClient
) -> None:
    copied = sign_in(browser, new_token(engine, "auditor"))
    assert copied != new_token(engine, "auditor") and not copied.startswith("dl_")
    thief = TestClient(browser.app, base_url=SITE, follow_redirects=False)
    thief.cookies.set(SESSION_COOKIE, copied)
    assert thief.get("/ui/audit").status_code == 200
    assert thief.get("/decisions").status_code == 200  # reads take the cookie too

    assert browser.post("/ui/logout", headers={"Origin": SITE}).status_code == 303
    assert SESSION_COOKIE not in browser.cookies
    assert thief.get("/ui/audit").headers["location"] == "/ui/login"
    assert thief.get("/decisions").status_code == 401
    # Signing in again opens a new session; the old one stays ended.
    sign_in(browser, new_token(engine, "auditor"))
    assert thief.get("/ui/").status_code == 303


def test_the_next_page_of_a_search_shows_the_decisions_after_the_first_page(
    engine: Engine, browser: TestClient
) -> None:
    batch = [events.decision() for _ in range(120)]
    with Session(engine) as session:
        raw = [RawMessage("t", 0, n, None, encode(e)) for n, e in enumerate(batch)]
        write_batch(session, raw)
        session.commit()
    sign_in(browser, new_token(engine, "auditor"))
    seen: list[str] = []
    path: str | None = "/ui/audit?model=credit-risk&order=desc"
    while path is not None:
        page = browser.get(path)
        assert page.status_code == 200 and 'role="alert"' not in page.text
        seen += re.findall(r'href="/ui/decisions/([0-9a-f-]{36})"', page.text)
        following = re.search(r'href="(/ui/audit\?[^"]+)">Next page', page.text)
        path = unescape(following.group(1)) if following else None
        assert len(seen) <= len(batch), "the pages go round"
    assert sorted(seen) == sorted(str(e.decision_id) for e in batch)  # each once
    newest_first = sorted(batch, key=lambda e: (e.occurred_at, e.decision_id), reverse=True)
    assert seen == [str(e.decision_id) for e in newest_first]


def test_a_nul_or_a_time_beyond_the_calendar_is_refused_not_a_server_error(
    engine: Engine, browser: TestClient
) -> None:
    sign_in(browser, new_token(engine, "operator"))
    silence = {"matchers": 'model="m"', "duration": "1h", "comment": "a\x00b"}
    nul = browser.post("/ui/silences", data=silence, headers={"Origin": SITE})
    assert nul.status_code == 422 and "comment" in nul.text
    assert browser.get("/ui/drift/credit%00risk/3").status_code == 422
    assert browser.get("/ui/audit", params={"model": "a\x00b"}).status_code == 422
    beyond = browser.get("/ui/audit", params={"since": "0001-01-01T00:00:00+14:00"})
    assert beyond.status_code == 200 and "since" in beyond.text and "year 1" in beyond.text
    position = json.dumps(["0001-01-01T00:00:00+14:00", str(uuid.UUID(int=0))])
    cursor = base64.urlsafe_b64encode(position.encode()).decode()
    after = browser.get("/ui/audit", params={"after": cursor})
    assert after.status_code == 200 and "not a cursor" in after.text
    too_long = silence | {"comment": "c" * 2_001}
    assert browser.post("/ui/silences", data=too_long, headers={"Origin": SITE}).status_code == 422
    with Session(engine) as session:
        assert session.exec(select(Silence)).all() == []
