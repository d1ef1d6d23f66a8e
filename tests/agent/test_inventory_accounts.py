"""Users and groups: this host's /etc/passwd, and a fixture shadow whose hashes must never leak."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from agent.collectors.base import ListSink
from agent.collectors.inventory import InventoryCollector, collect_sections
from agent.collectors.inventory.accounts import collect_groups, collect_users, password_status

ROOT = Path(__file__).parent / "fixtures" / "inventory" / "root"


def shadow_secrets(root: Path) -> list[str]:
    """Every non-trivial password field of the fixture shadow and passwd files."""
    secrets = [line.split(":")[1] for line in (root / "etc/shadow").read_text().splitlines()]
    secrets.append((root / "etc/passwd").read_text().splitlines()[7].split(":")[1])
    return [s for s in secrets if len(s) > 3]


def test_users_match_etc_passwd_on_this_host():
    expected = set()
    for line in Path("/etc/passwd").read_text().splitlines():
        if line and not line.startswith(("#", "+", "-")):
            name, _pw, uid = line.split(":")[:3]
            expected.add((name, int(uid)))
    assert {(u["name"], u["uid"]) for u in collect_users()} == expected


def test_user_rows_from_fixture_map_password_status_and_aging():
    users = {u["name"]: u for u in collect_users(ROOT)}
    assert "broken" not in users and "+nisuser" not in users  # bad uid, NIS line
    statuses = {name: u["password_status"] for name, u in users.items()}
    assert statuses == {
        "root": "locked", "daemon": "locked", "nobody": "locked", "alice": "set", "bob": "locked",
        "carol": "empty", "dave": "set", "legacy": "set", "ghost": "unknown",
    }
    alice = users["alice"]
    assert (alice["last_change_days"], alice["min_days"], alice["max_days"], alice["warn_days"],
            alice["inactive_days"], alice["expire_days"]) == (19500, 1, 90, 14, 30, 20000)
    assert users["dave"]["min_days"] is None and users["ghost"]["last_change_days"] is None
    assert alice["gecos"] == "Alice Nguyen,,," and users["bob"]["gecos"] is None
    assert (alice["uid"], alice["gid"], alice["home"], alice["shell"]) == (1000, 1000, "/home/alice", "/bin/bash")


def test_unreadable_shadow_gives_unknown_status(tmp_path):
    (tmp_path / "etc").mkdir()
    shutil.copy(ROOT / "etc/passwd", tmp_path / "etc/passwd")
    users = collect_users(tmp_path)
    assert {u["password_status"] for u in users} == {"unknown"}
    assert all(u["max_days"] is None for u in users)


def test_password_status_mapping():
    assert [password_status(s) for s in ("", "*", "!", "!!", "!$6$x$y", "*LK*", "$6$x$y", "$y$j9T$a$b")] == [
        "empty", "locked", "locked", "locked", "locked", "locked", "set", "set"]


def test_no_output_contains_a_shadow_hash():
    secrets = shadow_secrets(ROOT)
    assert len(secrets) >= 4
    sink = ListSink()
    InventoryCollector(root=ROOT).run(sink)
    outputs = [json.dumps(collect_sections(ROOT)), json.dumps([i.to_dict() for i in sink.items]),
               json.dumps(collect_users(ROOT))]
    for text in outputs:
        for secret in secrets:
            assert secret not in text
            assert secret.split("$")[-1] not in text  # not even the hash part on its own


def test_groups_from_fixture():
    groups = {g["name"]: g for g in collect_groups(ROOT)}
    assert "bad" not in groups
    assert groups["sudo"] == {"name": "sudo", "gid": 27, "members": ["alice", "bob"]}
    assert groups["adm"]["members"] == ["syslog", "alice"]
    assert groups["users"]["members"] == []


def test_groups_match_etc_group_on_this_host():
    expected = {(line.split(":")[0], int(line.split(":")[2]))
                for line in Path("/etc/group").read_text().splitlines() if line and line[0] not in "#+-"}
    assert {(g["name"], g["gid"]) for g in collect_groups()} == expected
