"""install/nginx/khien.conf: `nginx -t` accepts it as shipped, and a real nginx serving it in front of a
real khien server carries agents and people over TLS — redirect, HSTS, body caps, a dead upstream
skipped, and the client address the server records not forgeable through X-Forwarded-For."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from collector.db import Database
from tests.collector import helpers as h
from tests.conftest import free_port
from tests.install.conftest import INSTALL, self_signed
from tests.integration.conftest import Server, quiet_config

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
pytestmark = pytest.mark.skipif(not Path(NGINX).exists(),
                                reason="nginx not installed (Debian package nginx; tests/run installs it)")
SITE = INSTALL / "nginx" / "khien.conf"


def replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"expected exactly one {old!r} in khien.conf"
    return text.replace(old, new)


def site_for_test(directory: Path, cert: Path, key: Path, *, http_port: int | None = None,
                  https_port: int | None = None, upstreams: tuple[int, int] | None = None) -> Path:
    """khien.conf with the test's certificate and log paths and, to serve for real, loopback ports."""
    text = SITE.read_text()
    text = replace_once(text, "/etc/ssl/khien/fullchain.pem", str(cert))
    text = replace_once(text, "/etc/ssl/khien/privkey.pem", str(key))
    text = text.replace("/var/log/nginx/", f"{directory}/")
    if http_port:
        text = replace_once(text, "listen 80;", f"listen 127.0.0.1:{http_port};")
        text = replace_once(text, "listen 443 ssl http2;", f"listen 127.0.0.1:{https_port} ssl http2;")
        text = replace_once(text, "    listen [::]:80;\n", "")
        text = replace_once(text, "    listen [::]:443 ssl http2;\n", "")
    if upstreams:  # the same two lines in the people's and the agents' upstream
        for shipped, port in zip(("8001", "8002"), upstreams, strict=True):
            assert text.count(f"server 127.0.0.1:{shipped} ") == 2
            text = text.replace(f"server 127.0.0.1:{shipped} ", f"server 127.0.0.1:{port} ")
    site = directory / "khien.conf"
    site.write_text(text)
    main = directory / "nginx.conf"
    # What /etc/nginx/nginx.conf gives a site on Debian, with every path in the test's directory.
    main.write_text(f"pid {directory}/nginx.pid;\nerror_log {directory}/error.log;\nevents {{}}\n"
                    f"http {{\n  client_body_temp_path {directory}/body;\n  proxy_temp_path {directory}/proxy;\n"
                    f"  include {site};\n}}\n")
    return main


def nginx(directory: Path, main: Path, *args: str) -> list[str]:
    return [NGINX, "-p", str(directory), "-e", str(directory / "error.log"), "-c", str(main), *args]


def test_shipped_config_passes_nginx_t_without_warnings(tmp_path):
    cert, key = self_signed(tmp_path)
    proc = subprocess.run(nginx(tmp_path, site_for_test(tmp_path, cert, key), "-t"), capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "test is successful" in proc.stderr
    assert not re.search(r"\[(warn|emerg|alert|crit)\]", proc.stderr), proc.stderr


def test_client_max_body_size_matches_the_servers_caps():
    from collector.settings import MiB, Settings
    from collector.uploads import MULTIPART_OVERHEAD

    text = SITE.read_text()
    agent_block = text.split("location /api/v1/agent/ {", 1)[1].split("}", 1)[0]
    console_block = text.split("location / {", 1)[1].split("}", 1)[0]
    agent_cap = int(re.search(r"client_max_body_size (\d+)m;", agent_block)[1]) * MiB
    console_cap = int(re.search(r"client_max_body_size (\d+)m;", console_block)[1]) * MiB
    defaults = Settings(data_dir=Path("."), database_url="sqlite://")
    assert agent_cap == defaults.max_batch_bytes  # the server's own 413 and nginx's agree
    assert defaults.evidence_max_bytes + MULTIPART_OVERHEAD <= console_cap < 2 * defaults.evidence_max_bytes


def start_proxied(db_url: str, directory: Path) -> Server:
    """A real khien server that believes X-Forwarded-* from 127.0.0.1, as server.env sets it up."""
    port = free_port()
    directory.mkdir(exist_ok=True)
    # Insecure cookies only for the control request straight to the server over plain HTTP.
    env = os.environ | {"KHIEN_TRUSTED_PROXIES": "127.0.0.1", "KHIEN_INSECURE_COOKIES": "1"}
    srv = Server(url=f"http://127.0.0.1:{port}", db_url=db_url, data_dir=directory / "server", port=port, env=env,
                 log=directory / "server.log")
    srv.start()
    return srv


@pytest.fixture
def proxied_server(db_url: str, tmp_path: Path) -> Iterator[Server]:
    db = Database(db_url)
    h.seed_units(db)
    h.add_user(db, "admin1", "admin")
    db.dispose()
    srv = start_proxied(db_url, tmp_path)
    yield srv
    srv.stop()


@contextlib.contextmanager
def nginx_in_front_of(upstreams: tuple[int, int], directory: Path) -> Iterator[tuple[str, str, Path]]:
    """nginx serving khien.conf on loopback ports: (http URL, https URL, the CA certificate)."""
    directory.mkdir()
    cert, key = self_signed(directory)
    http_port, https_port = free_port(), free_port()
    main = site_for_test(directory, cert, key, http_port=http_port, https_port=https_port, upstreams=upstreams)
    proc = subprocess.Popen(nginx(directory, main, "-g", "daemon off;"), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    base = f"https://127.0.0.1:{https_port}"
    deadline = time.monotonic() + 30
    while True:
        assert proc.poll() is None, proc.stderr.read().decode()
        try:
            httpx.get(f"{base}/healthz", verify=trusting(cert), timeout=2)
            break
        except httpx.HTTPError:
            assert time.monotonic() < deadline, "nginx did not start"
            time.sleep(0.1)
    try:
        yield f"http://127.0.0.1:{http_port}", base, cert
    finally:
        proc.send_signal(signal.SIGQUIT)  # graceful: finish requests, then exit
        proc.wait(timeout=30)


@pytest.fixture
def running_nginx(proxied_server: Server, tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    # Nothing listens on the first upstream: every request must survive it.
    with nginx_in_front_of((free_port(), proxied_server.port), tmp_path / "nginx") as urls:
        yield urls


def trusting(ca: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca))


def audit_source(server: Server, token: str) -> str | None:
    reply = httpx.get(f"{server.url}/api/v1/audit", params={"action": "login_failed", "limit": 1},
                      headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert reply.status_code == 200, reply.text
    return reply.json()["items"][0]["source_ip"]


def failed_login(client: httpx.Client, forged: str) -> None:
    page = client.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)[1]
    client.post("/login", data={"username": "admin1", "password": "wrong", "csrf_token": csrf},
                headers={"X-Forwarded-For": forged})


def test_agents_and_people_through_nginx_over_tls(proxied_server, running_nginx, tmp_path):
    http_url, https_url, ca = running_nginx
    redirect = httpx.get(f"{http_url}/alerts?x=1", timeout=10)
    assert redirect.status_code == 301 and redirect.headers["location"].endswith("/alerts?x=1")
    assert redirect.headers["location"].startswith("https://")

    health = httpx.get(f"{https_url}/healthz", verify=trusting(ca), timeout=10)
    assert health.status_code == 200 and health.json()["database"] == "ok"
    assert health.headers["strict-transport-security"].startswith("max-age=63072000")
    assert "nginx/" not in health.headers.get("server", "")  # server_tokens off

    # The real agent enrolls and sends over TLS, trusting the private CA it was given.
    token = h.enroll_token(Database(proxied_server.db_url), "D1")
    state = tmp_path / "agent"
    agent = [sys.executable, "-m", "agent"]
    opts = ["--state-dir", str(state), "--config", str(quiet_config(tmp_path))]
    enroll = subprocess.run([*agent, "enroll", "--server", https_url, "--token", token, "--ca-file", str(ca), *opts],
                            capture_output=True, text=True, timeout=120)
    assert enroll.returncode == 0, enroll.stderr
    sent = subprocess.run([*agent, "run", "--once", *opts], capture_output=True, text=True, timeout=180)
    assert sent.returncode == 0, sent.stderr
    api_token = h.api_token(Database(proxied_server.db_url), "admin1")
    people = httpx.Client(base_url=https_url, verify=trusting(ca), timeout=30,
                          headers={"Authorization": f"Bearer {api_token}"})
    hosts = people.get("/api/v1/hosts").json()["items"]  # every request so far survived the dead upstream
    assert len(hosts) == 1 and hosts[0]["unit"] == "D1"

    # Over the agent cap nginx answers 413 itself, before the server reads a byte.
    too_big = people.post("/api/v1/agent/batches", content=b"\0" * (5 * 1024 * 1024 + 1),
                          headers={"Content-Encoding": "gzip", "Content-Type": "application/json"})
    assert too_big.status_code == 413

    # The server believes X-Forwarded-For from 127.0.0.1 (control: straight to it, the forged
    # address is recorded), but nginx replaces whatever the client sent with the real address.
    with httpx.Client(base_url=proxied_server.url, timeout=30) as direct:
        failed_login(direct, forged="198.51.100.7")
    assert audit_source(proxied_server, api_token) == "198.51.100.7"
    with httpx.Client(base_url=https_url, verify=trusting(ca), timeout=30) as browser:
        failed_login(browser, forged="203.0.113.9")
    assert audit_source(proxied_server, api_token) == "127.0.0.1"


def batches_accepted(server: Server) -> float:
    for line in httpx.get(f"{server.url}/metrics", timeout=30).text.splitlines():
        if line.startswith("khien_ingest_batches_total "):
            return float(line.split()[1])
    raise AssertionError("no khien_ingest_batches_total")


def test_each_agent_is_hashed_to_one_process_so_its_rate_limit_holds(db_url, tmp_path):
    """Two live processes behind nginx: every batch of one credential reaches the same process (its
    rate-limit bucket lives there), whereas least_conn would alternate them."""
    db = Database(db_url)
    h.seed_units(db)
    token = h.enroll_token(db, "D1", max_uses=3)
    db.dispose()
    servers = [start_proxied(db_url, tmp_path / f"s{i}") for i in range(2)]
    try:
        with nginx_in_front_of((servers[0].port, servers[1].port), tmp_path / "nginx") as (_, https_url, ca), \
                httpx.Client(base_url=https_url, verify=trusting(ca), timeout=30) as client:
            for i in range(3):
                enrolled = client.post("/api/v1/agent/enroll",
                                       json={"token": token, **h.identity(f"{i:032x}", hostname=f"web{i}")})
                assert enrolled.status_code == 201, enrolled.text
                before = [batches_accepted(s) for s in servers]
                for _ in range(6):
                    sent = client.post("/api/v1/agent/batches", content=h.gz(h.batch([h.heartbeat()])),
                                       headers=h.batch_headers(enrolled.json()))
                    assert sent.status_code == 202, sent.text
                grew = sorted(batches_accepted(s) - b for s, b in zip(servers, before, strict=True))
                assert grew == [0, 6], grew
    finally:
        for server in servers:
            server.stop()
