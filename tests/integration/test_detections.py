"""Built-in detections end to end: a real agent tails a real auth log, a real server raises alerts."""

from __future__ import annotations

import time

import httpx

from collector.db import Database
from tests.collector import helpers as h
from tests.integration.conftest import agent
from tests.integration.test_roundtrip import enroll

ATTACKER = "203.0.113.9"
LOG = [f"Mar  2 08:00:{i * 5:02d} web01 sshd[{4001 + i}]: Failed password for root from {ATTACKER} port "
       f"{52001 + i} ssh2" for i in range(8)] + [
    f"Mar  2 08:01:00 web01 sshd[4100]: Accepted password for root from {ATTACKER} port 52100 ssh2",
    "Mar  2 08:02:00 web01 sudo:    alice : user NOT in sudoers ; TTY=pts/0 ; PWD=/home/alice ; USER=root ; "
    "COMMAND=/bin/bash",
    "Mar  2 08:03:00 web01 useradd[4200]: new user: name=backdoor, UID=0, GID=0, home=/root, shell=/bin/bash, "
    "from=/dev/pts/0",
    "Mar  2 08:03:05 web01 usermod[4201]: add 'backdoor' to group 'sudo'",
    # Noise that must stay quiet: an ordinary login from elsewhere.
    "Mar  2 09:00:00 web01 sshd[5000]: Accepted publickey for deploy from 198.51.100.7 port 40000 ssh2: "
    "ED25519 SHA256:abc",
]
EXPECTED = {"ssh_lnx_brute_force", "ssh_lnx_success_after_failures", "ssh_lnx_root_login",
            "sudo_lnx_not_in_sudoers", "acct_lnx_new_uid0_account", "acct_lnx_added_to_privileged_group"}


def test_attack_in_the_auth_log_becomes_alerts_in_the_api(server, tmp_path):
    auth_log = tmp_path / "auth.log"
    auth_log.write_text("\n".join(LOG) + "\n")
    config = tmp_path / "agent.toml"
    config.write_text(f'[patches]\nenabled = false\n\n[fim]\nenabled = false\n\n[authlog]\npaths = ["{auth_log}"]\n'
                      "use_journal = false\nstart_at_end = false\n")
    state = enroll(server, tmp_path)
    run = agent("run", "--once", state_dir=state, config=config)
    assert run.returncode == 0, run.stderr
    db = Database(server.db_url)
    token = h.api_token(db, "admin1")
    db.dispose()
    api = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    deadline = time.monotonic() + 30
    rules: set[str] = set()
    while time.monotonic() < deadline and not rules >= EXPECTED:
        items = api.get("/api/v1/alerts").json()["items"]
        rules = {a["rule_id"] for a in items}
        time.sleep(0.3)
    assert rules >= EXPECTED, (rules, (tmp_path / "server.log").read_text()[-3000:])
    brute = next(a for a in items if a["rule_id"] == "ssh_lnx_brute_force")
    assert brute["group"]["source_ip"] == ATTACKER and brute["event_count"] == 8 and brute["unit_id"]
    assert not any(a["group"].get("source_ip") == "198.51.100.7" for a in items)
    metrics = httpx.get(f"{server.url}/metrics").text
    assert 'khien_alerts{severity="high",status="new"}' in metrics
    assert 'khien_detections_by_rule{rule="ssh_lnx_brute_force"} 1.0' in metrics


def test_a_defaced_web_root_becomes_a_high_alert(server, tmp_path):
    www = tmp_path / "www"
    www.mkdir()
    (www / "index.html").write_text("<h1>Sở Tài chính</h1>\n")
    config = tmp_path / "agent.toml"
    config.write_text(f'[patches]\nenabled = false\n\n[authlog]\nenabled = false\n\n[facts]\nenabled = false\n\n'
                      f'[fim]\npaths = ["{www}"]\nweb_roots = ["{www}"]\n')
    state = enroll(server, tmp_path)
    first = agent("run", "--once", state_dir=state, config=config)  # builds the baseline silently
    assert first.returncode == 0, first.stderr
    (www / "index.html").write_text("<h1>hacked by nobody</h1>\n")
    (www / "shell.php").write_text("<?php system($_GET['c']); ?>\n")
    second = agent("run", "--once", state_dir=state, config=config)  # the startup rescan finds both
    assert second.returncode == 0, second.stderr
    db = Database(server.db_url)
    token = h.api_token(db, "admin1")
    db.dispose()
    api = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    deadline = time.monotonic() + 30
    found: list[dict] = []
    while time.monotonic() < deadline and not found:
        found = api.get("/api/v1/alerts", params={"rule": "file_lnx_web_root_change"}).json()["items"]
        time.sleep(0.3)
    assert found and found[0]["severity"] == "high", (tmp_path / "server.log").read_text()[-3000:]
    assert found[0]["event_count"] >= 1
