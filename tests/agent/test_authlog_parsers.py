"""Auth log parsers on realistic lines: sshd, sudo, su, account tools; framing; garbage; counters."""

from __future__ import annotations

import io
from collections import Counter

import pytest

from agent.collectors.authlog import LineParser
from agent.collectors.authlog.logfile import iter_lines, parse_stream
from agent.collectors.authlog.syslog import frame
from tests.agent.test_authlog_helpers import FIXTURES, validate

H = "Nov 22 03:05:50 web01"


def one(line: str) -> dict:
    parser = LineParser()
    item = parser.parse_line(line)
    assert item is not None, (line, parser.counters)
    return {"type": item.type, **item.data}


@pytest.mark.parametrize(("line", "expected"), [
    (f"{H} sshd[1]: Failed password for root from 203.0.113.7 port 22 ssh2",
     {"type": "auth.failure", "action": "failed_password", "user": "root", "source_ip": "203.0.113.7",
      "source_port": 22, "method": "password", "outcome": "failure", "pid": 1, "host": "web01"}),
    (f"{H} sshd[1]: Failed password for invalid user admin from 2001:db8::1 port 4242 ssh2",
     {"action": "failed_password", "user": "admin", "source_ip": "2001:db8::1"}),
    (f"{H} sshd[1]: Failed publickey for git from 198.51.100.2 port 6 ssh2: RSA SHA256:abc",
     {"action": "failed_publickey", "method": "publickey", "user": "git"}),
    (f"{H} sshd[1]: Failed keyboard-interactive/pam for root from 10.0.0.1 port 7 ssh2",
     {"action": "failed_keyboard_interactive", "method": "keyboard-interactive/pam"}),
    (f"{H} sshd[1]: Invalid user oracle from 203.0.113.8 port 40022", {"action": "invalid_user", "user": "oracle"}),
    (f"{H} sshd[1]: Invalid user test from 203.0.113.8", {"action": "invalid_user", "source_ip": "203.0.113.8"}),
    (f"{H} sshd[1]: Illegal user test from 203.0.113.8", {"action": "invalid_user", "user": "test"}),
    (f"{H} sshd[1]: Accepted publickey for deploy from 192.0.2.1 port 5 ssh2: ED25519 SHA256:q8vF",
     {"type": "auth.success", "action": "accepted_publickey", "outcome": "success", "user": "deploy"}),
    (f"{H} sshd[1]: Accepted password for alice from 2001:db8::42 port 50100 ssh2",
     {"type": "auth.success", "action": "accepted_password", "source_ip": "2001:db8::42", "source_port": 50100}),
    (f"{H} sshd[1]: Accepted publickey for b from ::ffff:192.0.2.77 port 1 ssh2", {"source_ip": "192.0.2.77"}),
    (f"{H} sshd[1]: error: maximum authentication attempts exceeded for root from 1.2.3.4 port 9 ssh2 [preauth]",
     {"action": "max_auth_attempts", "user": "root"}),
    (f"{H} sshd[1]: error: maximum authentication attempts exceeded for invalid user x from 1.2.3.4 port 9 ssh2 "
     "[preauth]", {"action": "max_auth_attempts", "user": "x"}),
    (f"{H} sshd[1]: Connection closed by authenticating user root 1.2.3.4 port 9 [preauth]",
     {"action": "preauth_disconnect", "user": "root", "source_port": 9}),
    (f"{H} sshd[1]: Disconnected from invalid user oracle 2001:db8::5 port 9 [preauth]",
     {"action": "preauth_disconnect", "user": "oracle", "source_ip": "2001:db8::5"}),
    (f"{H} sshd[1]: Received disconnect from 2001:db8:85a3::8a2e:370:7334 port 40022:11: Bye Bye [preauth]",
     {"action": "preauth_disconnect", "source_ip": "2001:db8:85a3::8a2e:370:7334", "source_port": 40022}),
    (f"{H} sshd[1]: Received disconnect from 203.0.113.8: 11: Bye Bye [preauth]",
     {"action": "preauth_disconnect", "source_ip": "203.0.113.8"}),
    (f"{H} sshd[1]: Connection closed by 203.0.113.8 [preauth]", {"action": "preauth_disconnect"}),
    (f"{H} sshd[1]: Did not receive identification string from 203.0.113.50 port 41000",
     {"action": "no_identification", "source_port": 41000}),
    (f"{H} sshd[1]: Unable to negotiate with 2001:db8::9 port 41001: no matching key exchange method found.",
     {"action": "negotiation_failed", "source_ip": "2001:db8::9", "source_port": 41001}),
    (f"{H} sshd[1]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= "
     "rhost=203.0.113.7  user=root", {"action": "pam_failure", "user": "root", "source_ip": "203.0.113.7",
                                      "method": "pam"}),
    (f"{H} sshd[1]: PAM 5 more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= rhost=1.2.3.4  user=root",
     {"action": "pam_failure", "count": 5}),
    (f"{H} sshd[1]: error: PAM: Authentication failure for illegal user x from 1.2.3.4",
     {"action": "pam_failure", "user": "x"}),
    (f"{H} sshd[1]: message repeated 3 times: [ Failed password for root from 1.2.3.4 port 22 ssh2]",
     {"action": "failed_password", "count": 3}),
    (f"{H} sshd-session[1]: Failed password for root from 1.2.3.4 port 22 ssh2", {"process": "sshd-session"}),
    (f"{H} sudo:    alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/bin/ls",
     {"type": "auth.sudo", "action": "sudo_command", "outcome": "success", "user": "alice", "tty": "pts/0",
      "cwd": "/home/alice", "target_user": "root", "command": "/bin/ls"}),
    (f"{H} sudo: alice : 3 incorrect password attempts ; TTY=pts/0 ; PWD=/x ; USER=root ; COMMAND=/bin/a ; b",
     {"action": "sudo_incorrect_password", "outcome": "failure", "count": 3, "command": "/bin/a ; b"}),
    (f"{H} sudo[9]: eve : user NOT in sudoers ; TTY=pts/1 ; PWD=/h ; USER=root ; COMMAND=/bin/sh",
     {"action": "sudo_not_in_sudoers", "user": "eve", "pid": 9}),
    (f"{H} sudo: pam_unix(sudo:auth): authentication failure; logname=eve uid=1001 euid=0 tty=/dev/pts/1 "
     "ruser=eve rhost=  user=eve", {"type": "auth.sudo", "action": "pam_failure", "user": "eve", "tty": "pts/1"}),
    (f"{H} su[2]: Successful su for root by alice", {"type": "auth.su", "action": "su_success",
                                                     "user": "alice", "target_user": "root"}),
    (f"{H} su[2]: (to root) alice on pts/0", {"action": "su_success", "tty": "pts/0", "outcome": "success"}),
    (f"{H} su[2]: FAILED SU (to root) alice on pts/0", {"action": "su_failure", "outcome": "failure"}),
    (f"{H} su[2]: FAILED su for root by alice", {"action": "su_failure", "user": "alice"}),
    (f"{H} su[2]: pam_unix(su:auth): authentication failure; logname=alice uid=1000 euid=0 tty=/dev/pts/0 "
     "ruser=alice rhost=  user=root", {"type": "auth.su", "action": "pam_failure", "user": "alice",
                                       "target_user": "root"}),
    (f"{H} useradd[3]: new user: name=bob, UID=1001, GID=1001, home=/home/bob, shell=/bin/bash, from=/dev/pts/0",
     {"type": "account.change", "action": "user_added", "user": "bob", "uid": 1001, "gid": 1001,
      "home": "/home/bob", "shell": "/bin/bash"}),
    (f"{H} groupadd[3]: new group: name=devs, GID=1005", {"action": "group_added", "group": "devs", "gid": 1005}),
    (f"{H} userdel[3]: delete user 'bob'", {"action": "user_deleted", "user": "bob"}),
    (f"{H} usermod[3]: change user 'bob' shell from '/bin/bash' to '/bin/sh'",
     {"action": "user_modified", "user": "bob", "shell": "/bin/sh"}),
    (f"{H} usermod[3]: add 'bob' to group 'sudo'", {"action": "user_added_to_group", "group": "sudo"}),
    (f"{H} gpasswd[3]: user bob added by root to group docker", {"action": "user_added_to_group", "user": "bob"}),
    (f"{H} passwd[3]: pam_unix(passwd:chauthtok): password changed for bob", {"action": "password_changed"}),
    (f"{H} chpasswd[3]: pam_unix(chpasswd:chauthtok): password changed for bob", {"process": "chpasswd"}),
    (f"{H} groupdel[3]: group 'devs' removed", {"action": "group_deleted", "group": "devs"}),
    (f"{H} groupmod[3]: group changed in /etc/group (group ops/1007, new name: sre)",
     {"action": "group_modified", "group": "ops", "gid": 1007}),
])
def test_each_variant_becomes_the_right_item(line, expected):
    got = one(line)
    assert {k: got.get(k) for k in expected} == expected
    assert got["raw"] == line
    validate_lines([line])


def validate_lines(lines: list[str]) -> None:
    parser = LineParser()
    validate([i for i in (parser.parse_line(x) for x in lines) if i is not None])


@pytest.mark.parametrize(("line", "ts", "host", "prog", "pid", "msg"), [
    ("Nov  2 03:05:50 h sshd[123]: x y", "Nov  2 03:05:50", "h", "sshd", 123, "x y"),
    ("<38>1 2026-11-22T03:05:50.123+07:00 h sshd 123 - - msg", "2026-11-22T03:05:50.123+07:00", "h", "sshd",
     123, "msg"),
    ('<38>1 2026-11-22T03:05:50Z h su - ID1 [a b="c\\]"][d] m', "2026-11-22T03:05:50Z", "h", "su", None, "m"),
    ("2026-11-22T03:05:50.123456+07:00 h sudo: alice : x", "2026-11-22T03:05:50.123456+07:00", "h", "sudo",
     None, "alice : x"),
    ("<86>Nov 22 03:05:50 h su[1]: m", "Nov 22 03:05:50", "h", "su", 1, "m"),
])
def test_framing_of_rfc3164_rfc5424_and_iso_lines(line, ts, host, prog, pid, msg):
    assert tuple(frame(line)) == (ts, host, prog, pid, msg)


def run_fixture(name: str) -> tuple[list, LineParser]:
    parser = LineParser()
    with open(FIXTURES / name, "rb") as fh:
        items = list(parse_stream(fh, "auth", parser))
    return items, parser


def test_debian_fixture_counts_and_validates():
    items, parser = run_fixture("auth_debian.log")
    actions = Counter(i.data["action"] for i in items)
    assert actions["failed_password"] == 7 and actions["invalid_user"] == 3
    assert actions["preauth_disconnect"] == 8 and actions["max_auth_attempts"] == 2
    assert actions["pam_failure"] == 5 and actions["accepted_publickey"] == 3
    assert actions["sudo_command"] == 3 and actions["su_success"] == 2 and actions["su_failure"] == 2
    assert actions["user_added"] == 2 and actions["group_added"] == 2 and actions["password_changed"] == 2
    assert parser.ignored["unknown_sshd"] == 2 and parser.ignored["other_program"] == 2
    assert sum(i.data.get("count", 1) for i in items if i.data["action"] == "failed_password") == 11
    assert {i.data["source_ip"] for i in items if ":" in i.data.get("source_ip", "")} >= {
        "2001:db8:85a3::8a2e:370:7334", "2001:db8::42", "fe80::1%eth0"}
    validate(items)


def test_rhel_and_rsyslog_fixtures_parse_fully():
    rhel, parser = run_fixture("secure_rhel.log")
    assert len(rhel) == 27 and set(parser.ignored) == {"noise"}
    assert any(i.data["action"] == "accepted_other" and i.data["method"] == "gssapi-with-mic" for i in rhel)
    mixed, parser = run_fixture("rsyslog_iso_5424.log")
    assert len(mixed) == 10 and not parser.ignored
    assert {i.data["host"] for i in mixed} == {"web02", "web03", "web04"}
    validate(rhel + mixed)


def test_unknown_variants_and_garbage_are_counted_not_fatal():
    parser = LineParser()
    lines = [f"{H} sshd[1]: Frobnicated the flux", f"{H} sudo: something new", f"{H} su[1]: odd",
             f"{H} useradd[1]: odd", "\x00\x00\x00\x00", "", "\xff\xfe garbage \x01\x02", f"{H} kernel: x",
             f"{H} sshd[1]: Failed password for", "Nov 22 03:0", f"\x00\x00{H} sshd[1]: Invalid user a from 1.2.3.4"]
    items = [parser.parse_line(x) for x in lines]
    assert [i.data["action"] for i in items if i] == ["invalid_user"]
    assert parser.counters == {"recognised": 1, "ignored": {
        "unknown_sshd": 2, "unknown_sudo": 1, "unknown_su": 1, "unknown_account": 1, "garbage": 2,
        "empty": 2, "other_program": 1}}


def test_binary_and_one_megabyte_lines_are_skipped_in_bounded_memory():
    good = f"{H} sshd[1]: Failed password for root from 1.2.3.4 port 22 ssh2\n".encode()
    data = (good + b"A" * (1 << 20) + b"\n" + bytes(b for b in range(256) if b != 10) * 4 + b"\n" + good
            + f"{H} sshd[1]: Invalid user ".encode() + b"x" * (2 << 20) + b" from 1.2.3.4\n" + good)
    parser = LineParser()
    items = list(parse_stream(io.BytesIO(data), "auth", parser))
    assert len(items) == 3
    assert parser.ignored["oversize"] == 2 and parser.ignored["garbage"] == 1
    chunks = list(iter_lines(io.BytesIO(b"x" * 100 + b"\nok\n"), 10, lambda: None))
    assert chunks == [b"ok\n"]


def test_long_attacker_values_are_capped_to_what_the_collector_accepts():
    user = "u" * 3000
    items = [LineParser().parse_line(f"{H} sshd[1]: Invalid user {user} from 1.2.3.4 port 1"),
             LineParser().parse_line(f"{H} sudo: a : TTY=x ; PWD=/ ; USER=root ; COMMAND=/bin/echo {'y' * 9000}")]
    assert len(items[0].data["user"]) == 256 and len(items[1].data["raw"]) == 4096
    validate(items)


def test_declared_fields_are_accepted_by_the_validators():
    from agent.collectors.authlog import AuthLogCollector
    from collector.ingest.items.auth import ITEM_MODELS

    assert set(AuthLogCollector.fields) == set(ITEM_MODELS)
    for item_type, fields in AuthLogCollector.fields.items():
        assert set(fields) <= set(ITEM_MODELS[item_type].model_fields), item_type


@pytest.mark.parametrize("line", [
    f"{H} sshd[1]: Failed password for invalid user x from 6.6.6.6 port 1 ssh2 from 1.2.3.4 port 22 ssh2",
    f"{H} sshd[1]: Failed password for invalid user x from 6.6.6.6 port 1 ssh2: RSA y from 1.2.3.4 port 22 ssh2",
    f"{H} sshd[1]: Invalid user x from 6.6.6.6 port 1 from 1.2.3.4 port 22",
    f"{H} sshd[1]: Connection closed by invalid user x 6.6.6.6 port 1 1.2.3.4 port 22 [preauth]",
])
def test_a_crafted_user_name_cannot_spoof_the_source_address(line):
    assert one(line)["source_ip"] == "1.2.3.4"


def test_openssh_7_to_9_wording_is_all_known():
    items, parser = run_fixture("openssh_variants.log")
    actions = Counter(i.data["action"] for i in items)
    assert actions == {"preauth_disconnect": 6, "accepted_publickey": 2, "invalid_user": 1, "failed_password": 1,
                       "max_auth_attempts": 1, "pam_failure": 1, "bad_protocol": 1, "negotiation_failed": 1,
                       "accepted_hostbased": 1, "failed_hostbased": 1}
    assert set(parser.ignored) == {"noise"}
    validate(items)


@pytest.mark.parametrize(("line", "action"), [
    (f"{H} sudo: alice : PWD=/ ; USER=root ; COMMAND=/bin/ls", "sudo_command"),
    (f"{H} sudo[5]:   alice : TTY=pts/0 ; PWD=/ ; USER=root ; GROUP=wheel ; COMMAND=/bin/id", "sudo_command"),
    (f"{H} sudo: eve : user NOT authorized on host ; TTY=pts/1 ; PWD=/ ; USER=root ; COMMAND=/bin/sh",
     "sudo_not_in_sudoers"),
    (f"{H} usermod[3]: change user 'bob' UID from '1001' to '2001'", "user_modified"),
    (f"{H} usermod[3]: unlock user 'bob' password", "user_modified"),
    (f"{H} usermod[3]: change user name 'bob' to 'rob'", "user_renamed"),
    (f"{H} gpasswd[3]: user bob removed by root from group docker", "user_removed_from_group"),
    (f"{H} passwd[3]: password for 'bob' changed by 'root'", "password_changed"),
    (f"{H} chage[3]: changed password expiry for bob", "user_modified"),
])
def test_more_sudo_and_account_variants(line, action):
    assert one(line)["action"] == action


def test_huge_lines_do_not_grow_memory(tmp_path):
    import tracemalloc

    path = tmp_path / "huge.log"
    with open(path, "wb") as fh:
        for _ in range(3):
            fh.write(f"{H} sshd[1]: Invalid user ".encode() + b"x" * (4 << 20) + b" from 1.2.3.4 port 1\n")
        fh.write(f"{H} sshd[1]: Invalid user ok from 1.2.3.4 port 1\n".encode())
    parser = LineParser()
    tracemalloc.start()
    with open(path, "rb") as fh:
        items = list(parse_stream(fh, "auth", parser))
    _size, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert [i.data["user"] for i in items] == ["ok"] and parser.ignored["oversize"] == 3
    assert peak < 1 << 20, peak


@pytest.mark.parametrize(("data", "field"), [
    ({"action": "failed_password", "outcome": "failure", "source_ip": "evil.example"}, "source_ip"),
    ({"action": "made_up", "outcome": "failure"}, "action"),
    ({"action": "failed_password", "outcome": "failure", "raw": "x" * 5000}, "raw"),
    ({"action": "failed_password", "outcome": "failure", "password": "hunter2"}, "password"),
])
def test_the_validators_refuse_bad_auth_items(data, field):
    import json

    from agent.wire import Batch, Item
    from collector.errors import InvalidInput
    from collector.ingest.schema import parse_batch

    body = json.dumps(Batch(items=[Item("auth.failure", data).to_dict()]).to_dict()).encode()
    with pytest.raises(InvalidInput, match=field):
        parse_batch(body)
