"""The people-facing JSON API: authentication and unit scope on every path."""

from __future__ import annotations

from datetime import timedelta

import pytest

from collector.deps import current_user
from collector.errors import Forbidden
from collector.users import service as users
from tests.collector import helpers as h
from tests.collector.test_ingest import post


def test_hosts_api_shows_inventory_and_respects_unit_scope(client, db, enrolled):
    assert post(client, enrolled, h.batch([h.inventory({
        "os": [{"platform": "linux", "pretty_name": "Debian GNU/Linux 12 (bookworm)", "kernel": "6.1.0"}],
        "packages": [h.PKG], "listening_ports": [h.PORT]})])).status_code == 202
    h.add_user(db, "admin1", "admin")
    h.add_user(db, "officer1", "unit_officer", "D1")
    h.add_user(db, "officer2", "unit_officer", "D2")
    admin = {"Authorization": f"Bearer {h.api_token(db, 'admin1')}"}
    own = {"Authorization": f"Bearer {h.api_token(db, 'officer1')}"}
    other = {"Authorization": f"Bearer {h.api_token(db, 'officer2')}"}

    items = client.get("/api/v1/hosts", headers=admin).json()["items"]
    assert [(i["hostname"], i["unit"]) for i in items] == [("web01", "D1")]
    assert {"id", "hostname", "unit", "last_seen"} <= set(items[0])
    detail = client.get(f"/api/v1/hosts/{enrolled['host_id']}", headers=own).json()
    assert detail["packages"] == [h.PKG]
    assert detail["listening_ports"][0]["port"] == 22 and detail["os_name"].startswith("Debian")
    assert detail["os"]["kernel"] == "6.1.0" and detail["hardware"] is None
    for key in ("packages", "listening_ports", "users", "services", "interfaces", "os", "hardware"):
        assert key in detail

    assert client.get("/api/v1/hosts", headers=other).json()["items"] == []
    assert client.get(f"/api/v1/hosts/{enrolled['host_id']}", headers=other).status_code == 404
    assert [u["code"] for u in client.get("/api/v1/units", headers=other).json()["items"]] == ["D2"]
    assert client.get("/api/v1/hosts").status_code == 401
    assert client.get("/api/v1/hosts", headers={"Authorization": "Bearer khien_pat_forged"}).status_code == 401


def test_cookie_authenticated_writes_need_the_csrf_header(client, db):
    h.add_user(db, "admin2", "admin")
    with db.transaction() as s:
        user = users.get_by_username(s, username="admin2")
        new = users.create_console_session(s, user=user, ttl=timedelta(hours=1),
                                           source_ip=None)

    class FakeRequest:  # current_user only reads method, headers and cookies
        def __init__(self, method, headers):
            self.method, self.headers, self.cookies = method, headers, {"khien_session": new.token}

    with db.session() as s:
        assert current_user(FakeRequest("GET", {}), s).username == "admin2"
        with pytest.raises(Forbidden):
            current_user(FakeRequest("POST", {}), s)
        with pytest.raises(Forbidden):
            current_user(FakeRequest("POST", {"x-csrf-token": "wrong"}), s)
        assert current_user(FakeRequest("POST", {"x-csrf-token": new.csrf_token}), s).username == "admin2"
