"""The issue's end-to-end path, for real: a real agent's inventory with a known-vulnerable package →
`khien feeds import` → a finding with the right deadline → the package upgraded in the next inventory
→ the finding closed, with what proved it.

The agent reads a fixture host root (``[agent] host_root``) whose dpkg database the test upgrades, so
the machine's own packages are never touched.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import httpx

from collector.db import Database
from tests.collector import helpers as h
from tests.integration.conftest import agent

OS_RELEASE = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\n' \
             'VERSION="12 (bookworm)"\nVERSION_CODENAME=bookworm\nID=debian\n'


def dpkg_status(openssl_version: str) -> str:
    stanzas = [
        ("libssl3", "openssl", openssl_version, "Secure Sockets Layer toolkit - shared libraries"),
        ("openssl", None, openssl_version, "Secure Sockets Layer toolkit - cryptographic utility"),
        ("bash", None, "5.2.15-2+b7", "GNU Bourne Again SHell"),
    ]
    out = []
    for name, source, version, description in stanzas:
        out.append(f"Package: {name}\nStatus: install ok installed\nPriority: optional\nSection: libs\n"
                   f"Installed-Size: 1000\nMaintainer: Debian OpenSSL Team\nArchitecture: amd64\n"
                   + (f"Source: {source}\n" if source else "") + f"Version: {version}\nDescription: {description}\n")
    return "\n".join(out)


def host_root(tmp_path: Path, openssl_version: str) -> Path:
    root = tmp_path / "hostroot"
    (root / "etc").mkdir(parents=True, exist_ok=True)
    (root / "var/lib/dpkg").mkdir(parents=True, exist_ok=True)
    (root / "etc/os-release").write_text(OS_RELEASE)
    (root / "var/lib/dpkg/status").write_text(dpkg_status(openssl_version))
    return root


def khien(*args: str, db_url: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "khien.cli", *args, "--database-url", db_url],
                          capture_output=True, text=True, timeout=300)


def test_vulnerable_package_to_finding_to_upgrade_to_closed(server, tmp_path):
    root = host_root(tmp_path, "3.0.11-1~deb12u2")
    config = tmp_path / "agent.toml"
    config.write_text(f'[agent]\nhost_root = "{root}"\n\n[patches]\nenabled = false\n\n[authlog]\nenabled = false'
                      "\n\n[fim]\nenabled = false\n\n[facts]\nenabled = false\n")
    db = Database(server.db_url)
    token = h.enroll_token(db, "D1")
    state = tmp_path / "agent"
    assert agent("enroll", "--server", server.url, "--token", token, state_dir=state, config=config).returncode == 0
    run = agent("run", "--once", state_dir=state, config=config)
    assert run.returncode == 0, run.stderr

    tracker = tmp_path / "debian-tracker.json"
    tracker.write_text(json.dumps({"openssl": {"CVE-2024-5535": {
        "description": "SSL_select_next_proto buffer overread", "scope": "remote",
        "releases": {"bookworm": {"status": "resolved", "fixed_version": "3.0.11-1~deb12u10", "urgency": "medium",
                                  "repositories": {"bookworm": "3.0.11-1~deb12u2",
                                                   "bookworm-security": "3.0.11-1~deb12u10"}},
                     "bullseye": {"status": "resolved", "fixed_version": "1.1.1w-0+deb11u2", "urgency": "medium",
                                  "repositories": {"bullseye": "1.1.1w-0+deb11u1"}}}}}}))
    imported = khien("feeds", "import", str(tracker), db_url=server.db_url)
    assert imported.returncode == 0, imported.stderr
    assert "imported" in imported.stdout and "opened 1" in imported.stdout, imported.stdout
    again = khien("feeds", "import", str(tracker), db_url=server.db_url)
    assert again.returncode == 0 and "unchanged" in again.stdout  # same file: a no-op

    api = httpx.Client(base_url=server.url, timeout=30,
                       headers={"Authorization": f"Bearer {h.api_token(db, 'admin1')}"})
    [finding] = api.get("/api/v1/findings", params={"kind": "vulnerability"}).json()["items"]
    assert (finding["rule"], finding["location"], finding["finding_class"], finding["status"]) == \
        ("CVE-2024-5535", "openssl", "P3", "open")
    assert {b["name"] for b in finding["evidence"]["binaries"]} == {"libssl3", "openssl"}
    # P3 on a host whose level is not declared (treated as level 3): 90 days.
    assert datetime.fromisoformat(finding["due_at"]) - datetime.fromisoformat(finding["first_seen"]) == \
        timedelta(days=90)

    (root / "var/lib/dpkg/status").write_text(dpkg_status("3.0.11-1~deb12u10"))  # the upgrade
    run = agent("run", "--once", state_dir=state, config=config)
    assert run.returncode == 0, run.stderr
    # The server matches the changed host at ingest once its feed index is warm (the import came
    # from another process), else within its match tick (1 s here): wait for either.
    deadline = time.monotonic() + 60
    while (closed := api.get(f"/api/v1/findings/{finding['id']}").json())["finding"]["status"] != "fixed":
        assert time.monotonic() < deadline, closed
        time.sleep(0.5)
    assert closed["finding"]["fixed_proof"]["proof"] == "fixed version installed"
    assert {i["version"] for i in closed["finding"]["fixed_proof"]["installed"]} == {"3.0.11-1~deb12u10"}
    listed = khien("findings", "list", "--format", "json", db_url=server.db_url)
    assert listed.returncode == 0, listed.stderr
    assert [(f["rule"], f["status"]) for f in json.loads(listed.stdout)] == [("CVE-2024-5535", "fixed")]
    db.dispose()
