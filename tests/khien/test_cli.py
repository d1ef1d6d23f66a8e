"""The ``khien`` command as a user runs it: exit codes, one-line errors, tokens on the last line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from collector.agents import service as agents
from collector.db import Database
from collector.types import utcnow

KHIEN = [sys.executable, "-m", "khien.cli"]


def run(db_url: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*KHIEN, *args, "--database-url", db_url], input=stdin, capture_output=True,
                          text=True, timeout=120)


def assert_one_line_error(proc: subprocess.CompletedProcess, text: str) -> None:
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and text in lines[0] and "Traceback" not in proc.stderr, proc.stderr


def test_units_users_and_tokens(db_url):
    assert run(db_url, "unit", "add", "HN", "--name", "Hà Nội", "--kind", "province").returncode == 0
    assert run(db_url, "unit", "add", "HN-STC", "--name", "Sở Tài chính", "--kind", "department",
               "--parent", "HN").returncode == 0
    listing = run(db_url, "unit", "list")
    assert listing.returncode == 0 and "HN-STC" in listing.stdout and "Sở Tài chính" in listing.stdout

    assert_one_line_error(run(db_url, "unit", "add", "X", "--name", "x", "--kind", "department",
                              "--parent", "NOPE"), "unknown unit code: 'NOPE'")
    assert_one_line_error(run(db_url, "unit", "add", "HN", "--name", "dup", "--kind", "province"),
                          "already exists")
    assert_one_line_error(run(db_url, "unit", "add", "C1", "--name", "c", "--kind", "commune",
                              "--parent", "HN-STC"), "cannot be placed under a department")

    added = run(db_url, "user", "add", "officer", "--role", "unit_officer", "--unit", "HN-STC",
                "--password-stdin", stdin="a long enough password\n")
    assert added.returncode == 0, added.stderr
    assert_one_line_error(run(db_url, "user", "add", "xavier", "--role", "unit_officer", "--unit", "ZZ",
                              "--password-stdin", stdin="a long enough password\n"), "unknown unit code")
    assert_one_line_error(run(db_url, "user", "add", "yen", "--role", "admin", "--password-stdin", stdin="short\n"),
                          "too short")
    token = run(db_url, "user", "token", "officer", "--expires", "30d")
    assert token.returncode == 0 and token.stdout.strip().startswith("khien_pat_")

    created = run(db_url, "token", "create", "--unit", "HN-STC", "--expires", "2h", "--max-uses", "3")
    assert created.returncode == 0
    enroll_token = created.stdout.strip().splitlines()[-1]
    db = Database(db_url)
    with db.transaction() as s:  # the printed token really enrolls
        assert agents._usable_token(s, token=enroll_token, now=utcnow())
    db.dispose()
    assert_one_line_error(run(db_url, "token", "create", "--unit", "NOPE"), "unknown unit code")
    assert_one_line_error(run(db_url, "token", "create", "--unit", "HN", "--expires", "soon"), "invalid duration")


def test_unreachable_database_is_one_clear_line():
    proc = subprocess.run([*KHIEN, "unit", "list", "--database-url",
                           "postgresql+psycopg://nobody@127.0.0.1:1/none"], capture_output=True, text=True,
                          timeout=60)
    assert_one_line_error(proc, "database unreachable")
    proc = subprocess.run([*KHIEN, "server", "--database-url", "postgresql+psycopg://nobody@127.0.0.1:1/none",
                           "--port", "1"], capture_output=True, text=True, timeout=60)
    assert_one_line_error(proc, "database unreachable")


@pytest.mark.parametrize("args", [[], ["server"], ["demo"], ["unit", "add"], ["unit", "list"], ["user", "add"],
                                  ["user", "token"], ["token", "create"]])
def test_every_command_has_help(args):
    proc = subprocess.run([*KHIEN, *args, "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "usage: khien" in proc.stdout
