"""Hostile-input fixtures: a real ``khien server`` per backend over a seeded province, and in-process apps.

``live`` is one server per test module and backend (a module may set ``SERVER_ENV`` for its settings,
e.g. a low agent rate); it carries an administrator's API token and an enrolled agent's credential.
The in-process ``client`` / ``world`` / ``settings`` fixtures are the console tests' own.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from collector.db import Database
from tests.collector import helpers as h
from tests.conftest import BACKENDS, free_port, new_database_url
from tests.console.conftest import client, settings, world  # noqa: F401 - the console's app fixtures, reused
from tests.hostile.live import HostileServer
from tests.hostile.seed import Province, seed_province


@dataclass
class Live:
    server: HostileServer
    db_url: str
    admin_token: str  # Bearer API token of the administrator
    agent: dict  # the enrolled agent: agent_id, secret, host_id, unit (D1)
    province: Province

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def agent_credential(self) -> str:
        return f"{self.agent['agent_id']}.{self.agent['secret']}"

    def scalar(self, query):
        """One value from the server's database, read beside it."""
        db = Database(self.db_url)
        try:
            with db.session() as s:
                return s.scalar(query)
        finally:
            db.dispose()

    def enroll_token(self, unit: str = "D1") -> str:
        db = Database(self.db_url)
        try:
            return h.enroll_token(db, unit)
        finally:
            db.dispose()


@pytest.fixture(scope="module")
def live(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    backend = request.param
    home = tmp_path_factory.mktemp(f"hostile-{backend}")
    db_url = new_database_url(backend, home, request)
    db = Database(db_url)
    try:
        province = seed_province(db, data_dir=home / "data")
        admin_token = h.api_token(db, "admin")
        enroll_token = h.enroll_token(db, "D1")
    finally:
        db.dispose()
    port = free_port()
    server = HostileServer(url=f"http://127.0.0.1:{port}", db_url=db_url, data_dir=home / "data", port=port,
                           log=home / "server.log", env=getattr(request.module, "SERVER_ENV", {}))
    server.start()
    try:
        enrolled = httpx.post(f"{server.url}/api/v1/agent/enroll", timeout=30,
                              json={"token": enroll_token, **h.identity("e" * 32, hostname="agent01")})
        assert enrolled.status_code == 201, enrolled.text
        yield Live(server, db_url, admin_token, enrolled.json(), province)
    finally:
        server.stop()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # Parametrised here rather than with params= so the ids read [sqlite] / [postgresql] like `db` tests.
    if "live" in metafunc.fixturenames:
        metafunc.parametrize("live", BACKENDS, indirect=True, scope="module")
