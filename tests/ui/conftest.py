"""The web page against the real system: ``driftline demo --keep-running`` fills a store through
Kafka, with drift, reviews, checkpoints; headless Chromium (Debian's, driven by Playwright with
its executable path; nothing is downloaded) reads the pages. Every test fails on a server error
or a console error, and saves screenshots under ``DRIFTLINE_TEST_OUTPUT`` (default
``test-output/ui``)."""

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from playwright.sync_api import Browser, ConsoleMessage, Page, Response, sync_playwright

from driftline.collector.runtime.broker import free_port

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
OUTPUT = Path(os.environ.get("DRIFTLINE_TEST_OUTPUT", "test-output")) / "ui"


@dataclass(frozen=True)
class RunningSystem:
    url: str
    database_url: str
    operator_token: str
    auditor_token: str


def _token(database_url: str, role: str, environment: dict[str, str]) -> str:
    created = subprocess.run(
        [sys.executable, "-m", "driftline", "token", "create", "--name", f"ui-{role}",
         "--role", role, "--database-url", database_url],
        capture_output=True, text=True, env=environment, check=True,
    )  # fmt: skip
    found = re.search(r"\bdl_\S+", created.stdout)
    assert found, created.stdout
    return found.group()


@pytest.fixture(scope="session")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSystem]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium package")
    directory = tmp_path_factory.mktemp("ui-system")
    database_url = f"sqlite:///{directory / 'driftline.db'}"
    port = free_port()
    environment = os.environ | {
        "DRIFTLINE_SIGNING_KEY_FILE": str(directory / "signing-key.pem"),
        "DRIFTLINE_PRODUCER_KEY_FILE": str(directory / "producer-key.pem"),
        "DRIFTLINE_SPOOL_DIR": str(directory / "spool"),
        "DRIFTLINE_DETECT_SPOOL_DIR": str(directory / "detector-spool"),
    }
    log_path = directory / "demo.log"
    with log_path.open("wb") as log:
        demo = subprocess.Popen(
            [sys.executable, "-m", "driftline", "demo", "--database-url", database_url,
             "--api-port", str(port), "--keep-running"],
            stdout=log, stderr=subprocess.STDOUT, env=environment,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 240
            while "serving until Ctrl-C" not in log_path.read_text(errors="replace"):
                assert demo.poll() is None, log_path.read_text(errors="replace")
                assert time.monotonic() < deadline, "the demo did not finish in 240 s"
                time.sleep(0.5)
            yield RunningSystem(
                url=f"http://127.0.0.1:{port}",
                database_url=database_url,
                operator_token=_token(database_url, "operator", environment),
                auditor_token=_token(database_url, "auditor", environment),
            )
        finally:
            demo.terminate()
            demo.wait(timeout=30)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


@dataclass
class WatchedPage:
    """A page whose console errors and server errors are collected, to fail the test."""

    page: Page
    name: str
    problems: list[str] = field(default_factory=list)
    shots: int = 0

    def shot(self, what: str) -> Path:
        self.shots += 1
        OUTPUT.mkdir(parents=True, exist_ok=True)
        path = OUTPUT / f"{self.name}-{self.shots:02d}-{what}.png"
        self.page.screenshot(path=path, full_page=True)
        return path


@pytest.fixture
def watched(browser: Browser, request: pytest.FixtureRequest) -> Iterator[WatchedPage]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    watched = WatchedPage(context.new_page(), request.node.name)

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            watched.problems.append(f"console error: {message.text}")

    def response(answer: Response) -> None:
        if answer.status >= 500:
            watched.problems.append(f"server error {answer.status} at {answer.url}")

    watched.page.on("console", console)
    watched.page.on("response", response)
    yield watched
    context.close()
    assert watched.problems == []


def sign_in(watched: WatchedPage, system: RunningSystem, token: str) -> None:
    """With the keyboard alone: the login form focuses its field, Enter submits."""
    page = watched.page
    page.goto(f"{system.url}/ui/")
    assert page.url.endswith("/ui/login")
    page.wait_for_function("document.activeElement && document.activeElement.id === 'token'")
    page.keyboard.type(token)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{system.url}/ui/")


@contextmanager
def serve_app(app: Any) -> Iterator[str]:
    """An app of the API's served on loopback (port 0) for the block: its base URL."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the API did not start"
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
