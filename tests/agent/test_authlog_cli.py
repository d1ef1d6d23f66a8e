"""``khien-agent parse-log`` as a real process."""

from __future__ import annotations

import json
import subprocess
import sys

from agent.wire import Item
from tests.agent.test_authlog_helpers import FIXTURES, validate


def parse_log(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "agent", "parse-log", *args], input=stdin,
                          capture_output=True, timeout=60, check=False)


def test_auth_file_prints_one_json_object_per_recognised_line():
    done = parse_log("--source", "auth", str(FIXTURES / "auth_debian.log"))
    assert done.returncode == 0 and done.stderr == b""
    rows = [json.loads(x) for x in done.stdout.decode().splitlines()]
    assert len(rows) == 65 and all(set(r) == {"type", "data"} for r in rows)
    assert rows[0] == {"type": "auth.failure", "data": rows[0]["data"]} and rows[0]["data"]["user"] == "admin"
    validate([Item(r["type"], r["data"]) for r in rows])


def test_verbose_summary_goes_to_stderr_and_stdin_works():
    data = (FIXTURES / "auth_debian.log").read_bytes() + b"\x00\xff garbage\n"
    done = parse_log("-v", "--source", "syslog", "-", stdin=data)
    assert done.returncode == 0 and len(done.stdout.splitlines()) == 65
    summary = done.stderr.decode()
    assert "unknown_sshd=2" in summary and "garbage=1" in summary and "events: 65" in summary


def test_journal_source():
    done = parse_log("--source", "journal", str(FIXTURES / "journal.json"))
    assert done.returncode == 0 and len(done.stdout.splitlines()) == 14
    assert all(json.loads(x)["data"]["source"] == "journal" for x in done.stdout.splitlines())


def test_errors_are_one_line_with_exit_codes(tmp_path):
    missing = parse_log("--source", "auth", str(tmp_path / "missing.log"))
    assert missing.returncode == 1 and missing.stdout == b""
    assert missing.stderr.decode().strip().count("\n") == 0 and "missing.log" in missing.stderr.decode()
    assert parse_log("--source", "nope", "x").returncode == 2
    helped = parse_log("--help")
    assert helped.returncode == 0 and b"--source" in helped.stdout
