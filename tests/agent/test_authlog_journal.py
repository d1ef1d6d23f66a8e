"""Journal input: parsing ``journalctl -o json`` entries and polling a (scripted) journalctl by cursor."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

from agent.collectors.authlog import AuthLogCollector, LineParser
from agent.collectors.authlog.journal import JournalReader
from agent.collectors.base import ListSink
from tests.agent.test_authlog_helpers import FIXTURES, validate

ENTRIES = (FIXTURES / "journal.json").read_text().splitlines()


def test_journal_entries_parse_into_the_same_items():
    parser = LineParser("journal")
    items = [i for i in (parser.parse_journal(_load(x)) for x in ENTRIES) if i is not None]
    actions = Counter(i.data["action"] for i in items)
    assert actions == {"invalid_user": 1, "failed_password": 2, "pam_failure": 1, "accepted_publickey": 1,
                       "preauth_disconnect": 1, "sudo_command": 1, "sudo_not_in_sudoers": 1, "su_success": 1,
                       "su_failure": 1, "user_added": 1, "user_added_to_group": 1, "password_changed": 1,
                       "user_deleted": 1}
    first = items[0].data
    assert first["source"] == "journal" and first["host"] == "web05" and first["pid"] == 2301
    assert first["log_ts"].startswith("2026-11-22T") and first["raw"].startswith("sshd[2301]: Invalid user")
    assert any("\ufffd" in i.data.get("user", "") for i in items)  # MESSAGE given as a byte array
    assert parser.ignored == {"noise": 1, "other_program": 1, "garbage": 1}
    validate(items)


def _load(text: str) -> dict:
    try:
        return json.loads(text)
    except ValueError:
        return {}


def fake_journalctl(tmp_path: Path) -> Path:
    """A journalctl stand-in: records its arguments, prints the fixture entries after the cursor."""
    script = tmp_path / "journalctl"
    script.write_text(f"""#!{sys.executable}
import json, sys
with open({str(tmp_path / 'calls.jsonl')!r}, 'a') as log:
    log.write(json.dumps(sys.argv[1:]) + '\\n')
lines = open({str(FIXTURES / 'journal.json')!r}).read().splitlines()[:-1]
cursors = [json.loads(x)['__CURSOR'] for x in lines]
after = [a.split('=', 1)[1] for a in sys.argv if a.startswith('--after-cursor=')]
start = cursors.index(after[0]) + 1 if after else 0
n = int(sys.argv[sys.argv.index('-n') + 1]) if '-n' in sys.argv else len(lines)
print('\\n'.join(lines[start:start + n]))
""")
    script.chmod(0o755)
    return script


def calls(tmp_path: Path) -> list[list[str]]:
    return [json.loads(x) for x in (tmp_path / "calls.jsonl").read_text().splitlines()]


def test_collector_falls_back_to_the_journal_and_follows_the_cursor(tmp_path):
    journalctl = fake_journalctl(tmp_path)
    kwargs = {"paths": [tmp_path / "no-auth.log"], "journalctl": str(journalctl), "start_at_end": False,
              "max_lines_per_run": 6}
    collector = AuthLogCollector(tmp_path / "state", **kwargs)
    sink = ListSink()
    collector.run(sink)
    assert collector.stats.status == "ok" and len(sink.items) == 5
    assert "-t" in calls(tmp_path)[0] and "sshd" in calls(tmp_path)[0] and "--no-pager" in calls(tmp_path)[0]
    collector.run(sink)
    assert any(a.startswith("--after-cursor=") for a in calls(tmp_path)[1]) and "-n" in calls(tmp_path)[1]
    restarted = AuthLogCollector(tmp_path / "state", **kwargs)  # a restart resumes from the saved cursor
    for _ in range(3):
        restarted.run(sink)
    assert len(sink.items) == 14 and len({i.data["raw"] for i in sink.items}) == 14
    assert all(i.data["source"] == "journal" for i in sink.items)
    validate(sink.items)


def test_first_start_reads_from_now(tmp_path):
    reader = JournalReader(tmp_path / "j.json", journalctl=str(fake_journalctl(tmp_path)))
    reader.read()
    assert any(a.startswith("--since=@") for a in calls(tmp_path)[0])


def test_journalctl_failure_is_one_clear_error(tmp_path):
    script = tmp_path / "journalctl"
    script.write_text("#!/bin/sh\necho 'Failed to open journal: Permission denied' >&2\nexit 1\n")
    script.chmod(0o755)
    collector = AuthLogCollector(tmp_path / "state", paths=[tmp_path / "none"], journalctl=str(script))
    sinks = [ListSink(), ListSink()]
    for sink in sinks:
        collector.run(sink)
    assert [len(s.items) for s in sinks] == [1, 0]
    assert "Permission denied" in sinks[0].items[0].data["error"]


def test_journal_without_permission_is_an_error_not_silence(tmp_path):
    script = tmp_path / "journalctl"
    script.write_text("#!/bin/sh\necho 'Hint: You are currently not seeing messages from other users and the "
                      "system.' >&2\necho 'No journal files were opened due to insufficient permissions.' >&2\n")
    script.chmod(0o755)
    sink = ListSink()
    AuthLogCollector(tmp_path / "state", paths=[tmp_path / "none"], journalctl=str(script)).run(sink)
    assert [i.type for i in sink.items] == ["agent.error"] and "insufficient permissions" in sink.items[0].data["error"]
