"""accounts, sudoers, sysctl and files fact kinds: statuses never hashes, last logins, NOPASSWD rules."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from agent.collectors.facts.accounts import LASTLOG, UTMP, collect_accounts
from agent.collectors.facts.files import collect_files
from agent.collectors.facts.sudoers import collect_sudoers
from agent.collectors.facts.sysctl import collect_sysctl
from tests.agent.test_facts_support import DEBIAN

NOW = 20_000 * 86_400 + 3600  # day 20000 since the epoch (2024-10-04)


def tree(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    for name in ("passwd", "shadow", "group"):
        shutil.copy(DEBIAN / "etc" / name, root / "etc" / name)
    (root / "var/log").mkdir(parents=True)
    return root


def write_lastlog(root: Path, entries: dict[int, tuple[int, str]]) -> None:
    with open(root / "var/log/lastlog", "wb") as fh:
        for uid, (stamp, host) in entries.items():
            fh.seek(uid * LASTLOG.size)
            fh.write(LASTLOG.pack(stamp, b"pts/0", host.encode()))


def utmp(kind: int, user: str, host: str, stamp: int) -> bytes:
    return UTMP.pack(kind, 1234, b"pts/1", b"ts/1", user.encode(), host.encode(), 0, 0, 0, stamp, 0, b"\0" * 16)


def test_statuses_aging_uid0_and_no_hash_leaves(tmp_path: Path):
    root = tree(tmp_path)
    facts = collect_accounts(root, now=NOW)
    users = {u["name"]: u for u in facts["users"]}
    assert facts["available"] and facts["shadow_readable"]
    assert {n: u["password_status"] for n, u in users.items()} == {
        "root": "locked", "daemon": "locked", "toor": "set", "admin": "set", "deploy": "locked", "guest": "empty",
        "svc": "locked", "nohash": "none", "legacy": "set"}
    assert "bad" not in users and "+nisuser" not in users
    assert facts["uid0"] == ["root", "toor"] and facts["empty_password"] == ["guest"]
    admin = users["admin"]
    assert (admin["max_days"], admin["inactive_days"], admin["password_age_days"]) == (90, 30, 100)
    assert admin["last_change"] == "2024-06-26" and admin["can_login"] and not users["svc"]["can_login"]
    text = json.dumps(facts)
    assert "$6$" not in text and "$y$" not in text and "$1$" not in text and "Zm9v" not in text


def test_last_login_from_lastlog_and_wtmp(tmp_path: Path):
    root = tree(tmp_path)
    write_lastlog(root, {1000: (NOW - 10 * 86_400, "10.0.0.5"), 1001: (NOW - 400 * 86_400, "")})
    records = [utmp(7, "admin", "10.0.0.9", NOW - 2 * 86_400), utmp(8, "deploy", "", NOW),  # 8: logout
               utmp(7, "guest", "203.0.113.7", NOW - 86_400), utmp(2, "reboot", "6.1.0", NOW)]
    (root / "var/log/wtmp").write_bytes(b"".join(records) + b"\x01\x02truncated")
    facts = collect_accounts(root, now=NOW)
    users = {u["name"]: u for u in facts["users"]}
    assert facts["last_login_source"] == "lastlog+wtmp"
    assert users["admin"]["days_since_login"] == 2 and users["admin"]["last_login_from"] == "10.0.0.9"
    assert users["deploy"]["days_since_login"] == 400 and users["deploy"]["last_login_from"] is None
    assert users["guest"]["last_login_from"] == "203.0.113.7"
    assert users["root"]["last_login"] is None


def test_unreadable_shadow_is_reported(tmp_path: Path):
    root = tree(tmp_path)
    if os.geteuid() == 0:  # root reads a mode-000 file anyway: make it unreadable another way
        (root / "etc/shadow").unlink()
        (root / "etc/shadow").mkdir()
    else:
        (root / "etc/shadow").chmod(0)
    facts = collect_accounts(root, now=NOW)
    assert facts["shadow_readable"] is False and facts["errors"][0].startswith("/etc/shadow: unreadable")
    assert {u["password_status"] for u in facts["users"] if u["name"] != "legacy"} == {"unknown"}


def test_shadow_missing_gives_unknown_and_passwd_missing_is_unavailable(tmp_path: Path):
    root = tree(tmp_path)
    (root / "etc/shadow").unlink()
    facts = collect_accounts(root, now=NOW)
    users = {u["name"]: u for u in facts["users"]}
    assert users["admin"]["password_status"] == "unknown" and users["legacy"]["password_status"] == "set"
    assert facts["errors"] == ["/etc/shadow: missing"]
    assert collect_accounts(tmp_path / "empty")["available"] is False


def test_sudoers_nopasswd_all_and_includedir_rules():
    facts = collect_sudoers(DEBIAN)
    assert facts["available"]
    assert facts["files"] == ["/etc/sudoers", "/etc/sudoers.d/90-deploy", "/etc/sudoers.d/91-loop",
                              "/etc/sudoers.d/README"]  # dotted and ~ names skipped, as sudo does
    assert [(r["principal"], r["line"]) for r in facts["nopasswd"]] == [("deploy", 2), ("backup", 3), ("admin", 5)]
    assert "/usr/bin/systemctl restart nginx" in facts["nopasswd"][1]["rule"]  # continuation joined
    assert facts["nopasswd_count"] == 3
    assert [r["principal"] for r in facts["all_commands"]] == ["root", "%sudo", "deploy"]
    assert facts["use_pty"] and not facts["no_authenticate"] and not facts["logfile"]
    assert any("loop" in e for e in facts["errors"])


def test_sudoers_missing(tmp_path: Path):
    facts = collect_sudoers(tmp_path)
    assert facts["available"] is False and facts["error"] == "/etc/sudoers: missing"


def test_sysctl_values_and_missing_keys(tmp_path: Path):
    facts = collect_sysctl(DEBIAN)
    values = facts["values"]
    assert values["net.ipv4.ip_forward"] == 1 and values["kernel.randomize_va_space"] == 2
    assert values["kernel.core_pattern"].startswith("|/usr/share/apport")
    assert values["kernel.kptr_restrict"] is None and "kernel.kptr_restrict" in facts["missing"]
    assert collect_sysctl(tmp_path)["available"] is False


def test_files_metadata_only(tmp_path: Path):
    root = tree(tmp_path)
    (root / "etc/shadow").chmod(0o640)
    (root / "etc/passwd").chmod(0o644)
    (root / "etc/ssh").mkdir()
    key = root / "etc/ssh/ssh_host_ed25519_key"
    key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nsecret\n")
    key.chmod(0o604)
    facts = collect_files(root)
    files = facts["files"]
    assert files["/etc/shadow"]["mode"] == "0640" and not files["/etc/shadow"]["world_readable"]
    assert files["/etc/passwd"]["world_readable"] and files["/etc/passwd"]["type"] == "file"
    assert files["/etc/ssh/ssh_host_ed25519_key"]["world_readable"]
    assert files["/etc/ssh/ssh_host_ed25519_key.pub"]["exists"] is False
    assert files["/etc/gshadow"] == {"exists": False, "type": None, "mode": None}
    assert "secret" not in json.dumps(facts) and "PRIVATE" not in json.dumps(facts)
