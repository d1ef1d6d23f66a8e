"""Enrollment: tokens (expiry, uses, revocation), secrets stored hashed, host identity kept."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlmodel import select

from collector.agents.models import Agent, EnrollmentToken
from collector.app import create_app
from collector.hosts.models import Host
from collector.settings import load_settings
from collector.types import utcnow
from tests.collector import helpers as h


def test_enroll_returns_credential_and_stores_only_hashes(client, db):
    token = h.enroll_token(db)
    resp = client.post("/api/v1/agent/enroll", json={"token": token, **h.identity()})
    assert resp.status_code == 201
    body = resp.json()
    assert body["unit"] == "D1" and body["secret"]
    with db.session() as s:
        agent = s.get(Agent, body["agent_id"])
        stored = s.exec(select(EnrollmentToken)).one()
    assert agent.secret_hash != body["secret"] and body["secret"] not in agent.secret_hash
    assert stored.token_hash != token and stored.uses == 1
    config = client.get("/api/v1/agent/config", headers={
        "Authorization": f"Bearer {body['agent_id']}.{body['secret']}"})
    assert config.status_code == 200
    assert config.json()["heartbeat_interval_s"] == 60 and "/etc" in config.json()["fim_paths"]
    assert config.json()["send_interval_s"] == 5
    assert client.get("/api/v1/agent/config").status_code == 401


def test_bad_expired_exhausted_and_revoked_tokens_are_refused(client, db):
    assert client.post("/api/v1/agent/enroll", json={"token": "nope", **h.identity()}).status_code == 401
    expired = h.enroll_token(db, expires_in=timedelta(seconds=1))
    with db.transaction() as s:
        s.execute(update(EnrollmentToken).values(expires_at=utcnow() - timedelta(days=1)))
    resp = client.post("/api/v1/agent/enroll", json={"token": expired, **h.identity()})
    assert resp.status_code == 403 and "expired" in resp.json()["detail"]

    once = h.enroll_token(db, max_uses=1)
    assert client.post("/api/v1/agent/enroll", json={"token": once, **h.identity("b" * 32)}).status_code == 201
    resp = client.post("/api/v1/agent/enroll", json={"token": once, **h.identity("c" * 32)})
    assert resp.status_code == 403 and "no uses left" in resp.json()["detail"]

    revoked = h.enroll_token(db)
    with db.transaction() as s:
        s.execute(update(EnrollmentToken).where(EnrollmentToken.uses == 0).values(revoked=True))
    assert client.post("/api/v1/agent/enroll", json={"token": revoked, **h.identity("d" * 32)}).status_code == 403
    with db.session() as s:
        assert len(s.exec(select(Host)).all()) == 1  # only the one good enrollment created a host


def test_reenrolling_the_same_host_keeps_the_host_and_revokes_the_old_agent(client, db):
    token = h.enroll_token(db)
    first = client.post("/api/v1/agent/enroll", json={"token": token, **h.identity()}).json()
    second = client.post("/api/v1/agent/enroll", json={"token": token, **h.identity(hostname="renamed")}).json()
    assert first["host_id"] == second["host_id"] and first["agent_id"] != second["agent_id"]
    old = {"Authorization": f"Bearer {first['agent_id']}.{first['secret']}"}
    assert client.get("/api/v1/agent/config", headers=old).status_code == 403
    # A clone with the same machine-id but another product UUID is another machine.
    clone = client.post("/api/v1/agent/enroll", json={"token": token, **h.identity(product_uuid="x-1")}).json()
    other = client.post("/api/v1/agent/enroll", json={"token": token, **h.identity(product_uuid="x-2")}).json()
    assert clone["host_id"] != other["host_id"]
    # The same machine enrolled into another unit gets a separate record: nothing crosses units.
    d2 = client.post("/api/v1/agent/enroll", json={"token": h.enroll_token(db, "D2"), **h.identity()}).json()
    assert d2["host_id"] != first["host_id"]


def test_enroll_rejects_unknown_fields_and_bad_macs(client, db):
    token = h.enroll_token(db)
    resp = client.post("/api/v1/agent/enroll", json={"token": token, **h.identity(), "unit": "D2"})
    assert resp.status_code == 422 and "unit" in resp.json()["detail"]
    resp = client.post("/api/v1/agent/enroll", json={"token": token, **h.identity(macs=["not-a-mac"])})
    assert resp.status_code == 422 and "macs" in resp.json()["detail"]


def test_a_large_fleet_is_told_to_send_less_often(tmp_path, db, monkeypatch):
    """KHIEN_AGENT_SEND_S reaches every agent through its config (the agent keeps it within 1-300 s)."""
    monkeypatch.setenv("KHIEN_AGENT_SEND_S", "60")
    settings = dataclasses.replace(load_settings(data_dir=tmp_path, database_url=db.url), cookie_secure=False,
                                   scheduler=False)
    assert settings.send_interval_s == 60
    h.seed_units(db)
    with TestClient(create_app(settings, db=db)) as client:
        body = client.post("/api/v1/agent/enroll", json={"token": h.enroll_token(db), **h.identity()}).json()
        config = client.get("/api/v1/agent/config",
                            headers={"Authorization": f"Bearer {body['agent_id']}.{body['secret']}"})
    assert config.json()["send_interval_s"] == 60
