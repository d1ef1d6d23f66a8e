"""Browser fixtures: a real ``khien server`` per database backend, one Chromium, a fresh context per test.

The server is seeded (tests/e2e/seed.py) before it starts and shared by every flow of a backend in
one pytest process. The flows are marked as one xdist group so that, with ``--dist loadgroup`` (as
tests/run calls pytest), a single worker starts the servers. Nothing depends on that grouping: a
worker that gets some flows anyway starts its own seeded servers (pytest-xdist 3.8 under pytest 9.2
ignores the group, pytest-dev/pytest-xdist#1386). Chromium is Debian's (apt packages ``chromium``,
``chromium-driver``); Playwright never downloads a browser.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from collector.db import Database
from tests.conftest import BACKENDS, free_port, new_database_url
from tests.e2e import browser as b
from tests.e2e.seed import Seeded, seed
from tests.e2e.server import LiveServer

CHROMIUM = Path("/usr/bin/chromium")
E2E_DIR = Path(__file__).parent
XDIST_GROUP = "e2e-browser"
TIMEOUT_MS = 15_000  # one page action or expectation; generous for a loaded CI machine


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook turns the group into the node id suffix
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every browser flow shares its backend's server: keep them on one xdist worker."""
    for item in items:
        if E2E_DIR in Path(item.fspath).parents:
            item.add_marker(pytest.mark.xdist_group(XDIST_GROUP))


@pytest.fixture(scope="session")
def seeded_server(request: pytest.FixtureRequest,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, Seeded]]:
    """Seeded database, then the server on a free loopback port, ready; stopped after the last flow."""
    backend = request.param
    home = tmp_path_factory.mktemp(f"e2e-{backend}")
    db_url = new_database_url(backend, home, request)  # migrated; a PostgreSQL one is dropped at the end
    db = Database(db_url)
    try:
        seeded = seed(db)
    finally:
        db.dispose()
    port = free_port()
    server = LiveServer(url=f"http://127.0.0.1:{port}", db_url=db_url, data_dir=home / "data", port=port,
                        log=home / "server.log")
    server.start()
    try:
        yield server, seeded
    finally:
        server.stop()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # Parametrised here rather than with params= so the ids read [sqlite] / [postgresql] like `db` tests.
    if "seeded_server" in metafunc.fixturenames:
        metafunc.parametrize("seeded_server", BACKENDS, indirect=True, scope="session")


@pytest.fixture
def server(seeded_server: tuple[LiveServer, Seeded]) -> LiveServer:
    return seeded_server[0]


@pytest.fixture
def seeded(seeded_server: tuple[LiveServer, Seeded]) -> Seeded:
    return seeded_server[1]


@pytest.fixture(scope="session")
def chromium() -> Iterator[Browser]:
    assert CHROMIUM.exists(), "Debian's Chromium is missing: apt-get install chromium chromium-driver"
    with sync_playwright() as playwright:
        # --no-sandbox: Chromium's sandbox refuses to start as root (CI containers run as root).
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                             args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield browser
        browser.close()


@pytest.fixture
def page(request: pytest.FixtureRequest, chromium: Browser, server: LiveServer) -> Iterator[Page]:
    """A fresh browser context (no cookies) on the server, watched for dialogs and CSP violations."""
    context = chromium.new_context(base_url=server.url, locale="vi-VN", timezone_id="Asia/Ho_Chi_Minh",
                                   accept_downloads=True, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    tab = context.new_page()
    watch = b.watch(tab, request.node.name)
    try:
        yield tab
        watch.assert_clean("the end of the flow")
    finally:
        context.close()


@pytest.fixture(scope="session", autouse=True)
def _expect_timeout() -> None:
    """Playwright's expect() waits 5 s by default; a loaded CI machine may need longer."""
    expect.set_options(timeout=TIMEOUT_MS)
