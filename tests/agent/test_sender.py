"""The sender against a real HTTP server on loopback: every response code does what the contract says."""

from __future__ import annotations

import contextlib
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from email.utils import formatdate
from pathlib import Path

import pytest

from agent.config import AgentError
from agent.sender import Backoff, CredentialRejected, EnrollError, Sender, enroll, fetch_config
from agent.spool import Spool
from agent.state import CREDENTIAL_REJECTED, Credentials, StatusBook
from agent.transport import (
    ServerUnreachable,
    Transport,
    check_server_url,
    https_proxy_for,
    parse_retry_after,
    tls_context,
)
from agent.wire import Item
from tests.agent.fake_server import GOOD_TOKEN, FakeCollector, Scripted


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[Spool]:
    s = Spool(tmp_path / "spool.db")
    yield s
    s.close()


def make_sender(server: FakeCollector, spool: Spool, tmp_path: Path, **kwargs) -> Sender:
    agent_id, secret = server.add_agent()
    creds = Credentials(server=server.url, agent_id=agent_id, secret=secret)
    return Sender(spool, Transport(server.url, timeout_s=5), creds, backoff=Backoff(0.01, 0.05),
                  status=StatusBook(tmp_path), **kwargs)


def fill(spool: Spool, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        spool.put(Item("agent.error", {"collector": "test", "error": f"e{i}", "count": i}))


def test_drain_sends_everything_and_acks(server: FakeCollector, spool: Spool, tmp_path: Path) -> None:
    fill(spool, 12)
    sender = make_sender(server, spool, tmp_path, batch_max_items=5)
    result = sender.drain()
    assert result.ok and (result.batches, result.items) == (3, 12)
    assert server.distinct_items() == len(server.items) == 12
    assert spool.stats()["items"] == 0
    assert sender.status.snapshot()["last_send_result"] == "ok"


def test_5xx_backs_off_and_keeps_data(server: FakeCollector, spool: Spool, tmp_path: Path) -> None:
    fill(spool, 3)
    sender = make_sender(server, spool, tmp_path)
    sender.backoff = Backoff(30, 60)
    server.script.append(Scripted(503))
    result = sender.drain()
    assert result.outcome == "backoff" and "HTTP 503" in result.error
    assert 0 <= result.retry_in_s <= 30
    assert spool.stats()["items"] == 3
    requests = len(server.requests)
    assert sender.drain().outcome == "backoff"  # inside the backoff window: no traffic at all
    assert len(server.requests) == requests
    sender.backoff.until = 0
    assert sender.drain().ok and server.distinct_items() == 3


def test_429_honours_retry_after(server: FakeCollector, spool: Spool, tmp_path: Path) -> None:
    fill(spool, 2)
    sender = make_sender(server, spool, tmp_path)
    server.script.append(Scripted(429, {"Retry-After": "7"}))
    result = sender.drain()
    assert result.outcome == "backoff"
    assert result.retry_in_s >= 7  # backoff alone would be at most 0.01 s
    assert 6 < sender.backoff.remaining() <= 7
    assert spool.stats()["items"] == 2


def test_retry_after_formats() -> None:
    assert parse_retry_after("120") == 120
    assert 50 < parse_retry_after(formatdate(__import__("time").time() + 60, usegmt=True)) <= 60
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_backoff_is_full_jitter_exponential_and_capped() -> None:
    import random

    backoff = Backoff(1, 8, rng=random.Random(1))
    delays = [backoff.fail() for _ in range(8)]
    ceilings = [1, 2, 4, 8, 8, 8, 8, 8]
    assert all(0 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    backoff.reset()
    assert backoff.remaining() == 0 and backoff.failures == 0


def test_413_splits_until_batches_fit(server: FakeCollector, spool: Spool, tmp_path: Path) -> None:
    fill(spool, 10)
    server.max_items = 3
    result = make_sender(server, spool, tmp_path).drain()
    assert result.ok and result.splits >= 3
    assert 413 in server.statuses()
    assert server.distinct_items() == len(server.items) == 10


def test_413_on_a_single_item_dead_letters_it(server: FakeCollector, spool: Spool, tmp_path: Path) -> None:
    fill(spool, 1)
    server.max_items = 0
    result = make_sender(server, spool, tmp_path).drain()
    assert result.ok and result.dead_lettered == 1
    assert spool.stats()["dead_letter_reasons"] == {"too_large": 1}


def test_422_dead_letters_and_counts(server: FakeCollector, spool: Spool, tmp_path: Path) -> None:
    spool.put(Item("agent.error", {"collector": "test", "unexpected_field": 1}))  # the real validator says no
    fill(spool, 2)
    result = make_sender(server, spool, tmp_path, batch_max_items=1).drain()
    assert result.ok and result.dead_lettered == 1 and result.items == 2
    stats = spool.stats()
    assert stats["dead_letters"] == 1 and stats["dead_letter_reasons"] == {"rejected_schema": 1}
    assert server.distinct_items() == 2


def test_other_4xx_dead_letters_but_404_keeps(server: FakeCollector, spool: Spool, tmp_path: Path) -> None:
    fill(spool, 2)
    sender = make_sender(server, spool, tmp_path, batch_max_items=1)
    server.script.extend([Scripted(400), Scripted(404)])
    first = sender.drain()
    assert first.dead_lettered == 1 and first.outcome == "backoff"  # 404: wrong URL, not bad data
    assert spool.stats()["dead_letter_reasons"] == {"rejected_http_400": 1}
    assert spool.stats()["items"] == 1


def test_401_keeps_data_and_stops(server: FakeCollector, spool: Spool, tmp_path: Path) -> None:
    fill(spool, 4)
    sender = make_sender(server, spool, tmp_path)
    server.revoked.add(sender.credentials.agent_id)
    result = sender.drain()
    assert result.outcome == "credential_rejected" and result.error == CREDENTIAL_REJECTED
    assert spool.stats()["items"] == 4 and spool.stats()["dead_letters"] == 0
    assert sender.status.snapshot()["credential_rejected"] is True
    requests = len(server.requests)
    assert sender.drain().outcome == "credential_rejected"
    assert len(server.requests) == requests  # stopped: no more attempts with a dead credential
    agent_id, secret = server.add_agent()  # re-enrolled
    sender.use_credentials(Credentials(server=server.url, agent_id=agent_id, secret=secret))
    assert sender.drain().ok and server.distinct_items() == 4


def test_lost_reply_is_resent_with_same_batch_id(server: FakeCollector, spool: Spool, tmp_path: Path) -> None:
    fill(spool, 3)
    sender = make_sender(server, spool, tmp_path)
    server.lose_replies = 1
    assert sender.drain().outcome == "backoff"
    sender.backoff.until = 0
    result = sender.drain()
    assert result.ok and result.duplicates == 1
    assert len(server.batches) == 1
    assert len(server.items) == server.distinct_items() == 3


def test_server_down_then_up_loses_and_duplicates_nothing(
        server: FakeCollector, spool: Spool, tmp_path: Path) -> None:
    sender = make_sender(server, spool, tmp_path, batch_max_items=7)
    fill(spool, 5)
    assert sender.drain().ok
    server.stop()
    total = 5
    for _round in range(5):
        fill(spool, 10, start=total)
        total += 10
        sender.backoff.until = 0
        result = sender.drain()
        assert result.outcome == "backoff" and "connection refused" in result.error
    assert spool.stats()["items"] == total - 5
    assert sender.status.snapshot()["last_error"].startswith("cannot reach")
    server.start()  # same port
    sender.backoff.until = 0
    assert sender.drain().ok
    assert spool.stats()["items"] == 0
    assert len(server.items) == server.distinct_items() == total


def test_plain_http_to_remote_host_is_refused_without_traffic(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args, **kwargs):
        raise AssertionError("network used")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    for url in ("http://10.0.0.5:8000", "http://khien.example.gov.vn", "http://127.0.0.1.nip.io"):
        with pytest.raises(AgentError, match="refusing plain http://"):
            Transport(url)
        with pytest.raises(AgentError, match="refusing plain http://"):
            enroll_to(url)
    for url in ("http://127.0.0.1:8000", "http://127.9.9.9", "http://[::1]:80", "http://localhost:1"):
        assert check_server_url(url) == url
    assert check_server_url("http://10.0.0.5/", allow_insecure_http=True) == "http://10.0.0.5"
    for bad in ("ftp://x", "khien.example", "https://user:pw@host", "https://host:99999"):
        with pytest.raises(AgentError, match="invalid server URL"):
            check_server_url(bad)


def enroll_to(url: str) -> Credentials:
    return enroll(Transport(url), token="t", identity={"hostname": "h"}, agent_version="0", platform="linux")


def test_enroll_and_fetch_config(server: FakeCollector) -> None:
    transport = Transport(server.url)
    identity = {"hostname": "web01", "machine_id": "m" * 32, "product_uuid": None, "macs": ["02:00:00:00:00:01"]}
    creds = enroll(transport, token=GOOD_TOKEN, identity=identity, agent_version="0.1.0", platform="linux")
    assert creds.agent_id in server.agents and creds.unit == "SO-TEST" and creds.host_id == 7
    with pytest.raises(EnrollError, match="enrollment token rejected by the server: enrollment token invalid"):
        enroll(transport, token="bad", identity=identity, agent_version="0.1.0", platform="linux")
    server.config = {"heartbeat_interval_s": 30, "batch_max_items": 100, "fim_paths": ["/etc"], "batch_max_bytes": "x"}
    assert fetch_config(transport, creds) == {"heartbeat_interval_s": 30, "batch_max_items": 100}
    server.revoked.add(creds.agent_id)
    with pytest.raises(CredentialRejected):
        fetch_config(transport, creds)


def test_unreachable_server_is_one_clear_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ServerUnreachable, match=f"cannot reach http://127.0.0.1:{port}: connection refused"):
        enroll_to(f"http://127.0.0.1:{port}")


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem"), "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    return d / "cert.pem", d / "key.pem"


def test_https_verifies_certificates(tls_server: FakeCollector, tls_files: tuple[Path, Path]) -> None:
    cert, key = tls_files
    with pytest.raises(ServerUnreachable, match="TLS certificate verification failed"):
        enroll(Transport(tls_server.https_url), token=GOOD_TOKEN, identity={"hostname": "h"},
               agent_version="0", platform="linux")
    creds = enroll(Transport(tls_server.https_url, ca_file=str(cert)), token=GOOD_TOKEN,
                   identity={"hostname": "h"}, agent_version="0", platform="linux")
    assert creds.ca_file == str(cert) and creds.server == tls_server.https_url
    with pytest.raises(AgentError, match="cannot load CA file"):
        Transport("https://127.0.0.1:1", ca_file=str(key.parent / "missing.pem"))


@pytest.fixture
def tls_server(tls_files: tuple[Path, Path]) -> Iterator[FakeCollector]:
    cert, key = tls_files
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = FakeCollector().start(tls=context)
    yield server
    server.stop()


def test_system_trust_store_is_searched_lazily(tls_server: FakeCollector, tls_files, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    cert, _key = tls_files
    store = tmp_path / "certs"
    store.mkdir()
    (store / "khien-test.pem").write_bytes(cert.read_bytes())
    subprocess.run(["openssl", "rehash", str(store)], check=True, capture_output=True)
    monkeypatch.setenv("SSL_CERT_DIR", str(store))
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    context = tls_context()
    assert context.cert_store_stats()["x509_ca"] == 0  # nothing parsed up front
    creds = enroll(Transport(tls_server.https_url), token=GOOD_TOKEN, identity={"hostname": "h"},
                   agent_version="0", platform="linux")
    assert creds.agent_id in tls_server.agents


def test_proxy_selection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HTTPS_PROXY", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("https_proxy", raising=False)
    assert https_proxy_for("khien.example") is None
    monkeypatch.setenv("https_proxy", "http://proxy.so.local:8080")
    monkeypatch.setenv("no_proxy", ".noi-bo.gov.vn, 10.0.0.5")
    assert https_proxy_for("khien.example") == ("proxy.so.local", 8080)
    assert https_proxy_for("khien.noi-bo.gov.vn") is None
    assert https_proxy_for("10.0.0.5") is None
    assert https_proxy_for("127.0.0.1") is None  # loopback never goes through a proxy


def connect_proxy() -> tuple[int, list[str]]:
    """A minimal CONNECT proxy on loopback; returns its port and the targets it tunnelled to."""
    listener = socket.create_server(("127.0.0.1", 0))
    seen: list[str] = []

    def pump(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError), src, dst:  # the other direction may close first
            while data := src.recv(65536):
                dst.sendall(data)

    def serve() -> None:
        while True:
            client, _ = listener.accept()
            head = b""
            while b"\r\n\r\n" not in head:
                head += client.recv(4096)
            target = head.split()[1].decode()
            seen.append(target)
            host, port = target.rsplit(":", 1)
            upstream = socket.create_connection((host, int(port)))
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            threading.Thread(target=pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=pump, args=(upstream, client), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    return listener.getsockname()[1], seen


def test_https_goes_through_the_proxy_end_to_end(tls_server: FakeCollector, tls_files,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    port, seen = connect_proxy()
    monkeypatch.setattr("agent.transport.https_proxy_for", lambda host: ("127.0.0.1", port))
    creds = enroll(Transport(tls_server.https_url, ca_file=str(tls_files[0])), token=GOOD_TOKEN,
                   identity={"hostname": "h"}, agent_version="0", platform="linux")
    assert creds.agent_id in tls_server.agents
    assert seen == [f"127.0.0.1:{tls_server.port}"]  # the proxy saw only the CONNECT target
