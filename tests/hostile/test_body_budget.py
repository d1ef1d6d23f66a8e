"""Connections that send batch bodies slowly, without a valid credential, cannot make the server hold
unbounded memory: past KHIEN_INGEST_BODY_MB of bodies in flight a batch gets 503 with Retry-After
(the agent keeps it and resends), and what a dropped connection held is given back.

Against a real server with a 1 MB budget, from raw sockets that send headers and most of a body,
then wait - the way a slow-loris client or a crowd of them would.
"""

from __future__ import annotations

import socket
import time

import httpx
import pytest
from sqlalchemy import func, select

from collector.errors import Overloaded
from collector.ingest.inflight import BodyBudget
from collector.ingest.models import IngestBatch
from tests.collector import helpers as ch
from tests.hostile.conftest import Live

MiB = 1024 * 1024
SERVER_ENV = {"KHIEN_INGEST_BODY_MB": "1"}
DECLARED = MiB + 64 * 1024  # under the 5 MiB batch cap
HELD = MiB + 16 * 1024  # sent, leaving the body unfinished: alone, it is read past the budget


def open_body(live: Live, sent: int) -> socket.socket:
    """A connection that sent a batch's headers (a made-up credential) and ``sent`` bytes of its body."""
    host, port = live.url.removeprefix("http://").split(":")
    conn = socket.create_connection((host, int(port)), timeout=30)
    conn.sendall(f"POST /api/v1/agent/batches HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer nobody.secret\r\n"
                 f"Content-Type: application/json\r\nContent-Encoding: gzip\r\nContent-Length: {DECLARED}\r\n\r\n"
                 .encode())
    conn.sendall(b"\x1f" * sent)
    return conn


def send_batch(live: Live) -> httpx.Response:
    return httpx.post(f"{live.url}/api/v1/agent/batches", timeout=30, content=ch.gz(ch.batch([ch.heartbeat()])),
                      headers=ch.batch_headers(live.agent))


def until(answer_of, status: int, *, timeout: float = 20) -> list[httpx.Response]:
    """Send until one answer has ``status`` (the server reads what the sockets sent at its own pace)."""
    answers = []
    deadline = time.monotonic() + timeout
    while not answers or answers[-1].status_code != status:
        assert time.monotonic() < deadline, [a.status_code for a in answers]
        answers.append(answer_of())
        if answers[-1].status_code != status:
            time.sleep(0.1)
    return answers


def stored(live: Live) -> int:
    return live.scalar(select(func.count()).select_from(IngestBatch)
                       .where(IngestBatch.agent_id == live.agent["agent_id"]))


def test_bodies_in_flight_are_bounded_and_given_back_when_the_connection_drops(live: Live):
    before = stored(live)
    hog = open_body(live, HELD)
    try:
        answers = until(lambda: send_batch(live), 503)
        refused = answers[-1]
        assert 10 <= int(refused.headers["retry-after"]) <= 40 and "busy" in refused.json()["detail"]
        accepted_meanwhile = sum(a.status_code == 202 for a in answers)  # sent before the hog was read
        assert all(a.status_code in (202, 503) for a in answers)

        # A second slow body is refused too, on its own connection, before it is all read.
        other = open_body(live, 64 * 1024)
        try:
            other.settimeout(20)
            head = other.recv(4096).decode(errors="replace")
            assert head.startswith("HTTP/1.1 503") and "retry-after" in head.lower(), head
        finally:
            other.close()
    finally:
        hog.close()  # the server sees the client go and gives back what its body held

    accepted = until(lambda: send_batch(live), 202)
    assert accepted[-1].json() == {"accepted": 1, "duplicate": False}
    # Only accepted batches were stored: a refused one is the agent's to send again.
    assert stored(live) == before + accepted_meanwhile + 1
    metrics = httpx.get(f"{live.url}/metrics", timeout=30).text
    assert 'khien_ingest_rejections_total{reason="Overloaded"}' in metrics
    assert not live.server.server_errors()


def test_a_request_alone_is_never_refused_and_what_it_took_is_given_back():
    budget = BodyBudget(100)
    with budget.hold() as take:
        take(80)
        take(80)  # alone: over the budget, still read (its own cap bounds it)
        assert budget.held == 160
    assert budget.held == 0
    with budget.hold() as first, budget.hold() as second:
        first(60)
        second(40)
        with pytest.raises(Overloaded, match="server busy") as refused:
            second(1)
        assert refused.value.retry_after >= 10 and budget.refused == 1
        assert budget.held == 100
    assert budget.held == 0

