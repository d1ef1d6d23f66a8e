"""Following a real auth log file: positions, rotation, copytruncate, recreation, restarts, bounds."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agent.collectors.authlog import AuthLogCollector
from agent.collectors.authlog.tail import FileTail
from agent.collectors.base import ListSink
from tests.agent.test_authlog_helpers import validate


def line(n: int, ip: str = "203.0.113.7") -> str:
    return f"Nov 22 03:05:{n % 60:02d} web01 sshd[{n}]: Failed password for root from {ip} port {n} ssh2\n"


def append(path: Path, first: int, count: int) -> None:
    with open(path, "a") as fh:
        fh.writelines(line(n) for n in range(first, first + count))


def ports(collector: AuthLogCollector) -> list[int]:
    sink = ListSink()
    stats = collector.run(sink)
    assert stats.status == "ok", stats.last_error
    return [i.data["source_port"] for i in sink.items]


def make(tmp_path: Path, log: Path, **kwargs) -> AuthLogCollector:
    return AuthLogCollector(tmp_path / "state", paths=[log], use_journal=False, **kwargs)


def test_first_start_is_at_end_then_only_new_lines(tmp_path):
    log = tmp_path / "auth.log"
    append(log, 0, 5)
    collector = make(tmp_path, log)
    assert ports(collector) == []
    append(log, 5, 3)
    assert ports(collector) == [5, 6, 7]
    assert ports(collector) == []
    assert ports(make(tmp_path / "other", log, start_at_end=False)) == list(range(8))


def test_restart_resumes_without_rereading_or_skipping(tmp_path):
    log = tmp_path / "auth.log"
    log.write_text("")
    first = make(tmp_path, log)
    ports(first)
    append(log, 0, 4)
    assert ports(first) == [0, 1, 2, 3]
    append(log, 4, 3)
    first.tail.close()
    assert ports(make(tmp_path, log)) == [4, 5, 6]


def test_unfinished_last_line_waits_for_its_newline(tmp_path):
    log = tmp_path / "auth.log"
    log.write_text("")
    collector = make(tmp_path, log)
    ports(collector)
    text = line(1) + line(2)
    log.write_text(text[:-20])
    assert ports(collector) == [1]
    with open(log, "a") as fh:
        fh.write(text[-20:])
    assert ports(collector) == [2]


def test_rename_rotation_finishes_old_file_then_reads_new_from_start(tmp_path):
    log = tmp_path / "auth.log"
    log.write_text("")
    collector = make(tmp_path, log)
    ports(collector)
    append(log, 0, 2)
    assert ports(collector) == [0, 1]
    append(log, 2, 2)  # written before rotation, not read yet
    os.rename(log, tmp_path / "auth.log.1")
    append(tmp_path / "auth.log.1", 4, 1)  # the daemon writes on until it is told to reopen
    append(log, 100, 2)
    assert ports(collector) == [2, 3, 4, 100, 101]
    append(log, 102, 1)
    assert ports(collector) == [102]


def test_rotation_while_the_agent_was_stopped(tmp_path):
    log = tmp_path / "auth.log"
    log.write_text("")
    collector = make(tmp_path, log)
    ports(collector)
    append(log, 0, 2)
    assert ports(collector) == [0, 1]
    collector.tail.close()
    append(log, 2, 2)
    os.rename(log, tmp_path / "auth.log.1")
    append(log, 100, 1)
    assert ports(make(tmp_path, log)) == [2, 3, 100]


def test_copytruncate_restarts_at_zero(tmp_path):
    log = tmp_path / "auth.log"
    log.write_text("")
    collector = make(tmp_path, log)
    ports(collector)
    append(log, 0, 5)
    assert ports(collector) == [0, 1, 2, 3, 4]
    with open(log, "r+") as fh:
        fh.truncate(0)
    append(log, 50, 2)
    assert ports(collector) == [50, 51]
    # Truncated and regrown past the old offset before we looked: caught by the first bytes.
    with open(log, "r+") as fh:
        fh.truncate(0)
    append(log, 60, 6)
    assert ports(collector) == [60, 61, 62, 63, 64, 65]
    assert collector.counters["truncations"] == 2


def test_delete_and_recreate(tmp_path):
    log = tmp_path / "auth.log"
    log.write_text("")
    collector = make(tmp_path, log)
    ports(collector)
    append(log, 0, 1)
    assert ports(collector) == [0]
    log.unlink()
    assert ports(collector) == []
    append(log, 10, 2)
    assert ports(collector) == [10, 11]
    log.unlink()
    collector.tail.close()
    restarted = make(tmp_path, log)
    assert ports(restarted) == [] and restarted.status == "waiting for file"
    append(log, 20, 1)
    assert ports(restarted) == [20]


def test_missing_file_is_waiting_not_an_error(tmp_path):
    collector = make(tmp_path, tmp_path / "nope.log")
    assert ports(collector) == []
    assert collector.status == "waiting for file" and collector.stats.errors == 0


def test_reads_are_bounded_per_run(tmp_path):
    log = tmp_path / "auth.log"
    log.write_text("")
    collector = make(tmp_path, log, max_lines_per_run=100)
    ports(collector)
    append(log, 0, 250)
    assert [len(ports(collector)) for _ in range(4)] == [100, 100, 50, 0]
    by_bytes = make(tmp_path / "b", log, start_at_end=False, max_bytes_per_run=len(line(1)) * 10)
    assert len(ports(by_bytes)) == 10


def test_oversize_line_in_the_file_is_skipped_and_counted(tmp_path):
    log = tmp_path / "auth.log"
    log.write_text("")
    collector = make(tmp_path, log, max_line_bytes=4096)
    ports(collector)
    with open(log, "a") as fh:
        fh.write(line(1) + "Z" * (1 << 20))  # a 1 MB line still being written
    assert ports(collector) == [1]
    with open(log, "a") as fh:
        fh.write("Z" * 1000 + "\n" + line(2))
    assert ports(collector) == [2]
    assert collector.counters["ignored"]["oversize"] == 1


def test_permission_denied_is_reported_once_for_real():
    """A real unreadable file: as root, the check runs as 'nobody' (root reads everything)."""
    import shutil
    import subprocess
    import sys
    import tempfile

    prefix: list[str] = []
    if os.geteuid() == 0:
        if not shutil.which("setpriv"):
            pytest.skip("needs setpriv to drop root")
        prefix = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
    work = Path(tempfile.mkdtemp())
    try:
        work.chmod(0o777)
        log = work / "auth.log"
        log.write_text(line(1))
        log.chmod(0)
        code = ("import sys; from pathlib import Path; from agent.collectors.authlog import AuthLogCollector; "
                "from agent.collectors.base import ListSink; "
                f"c = AuthLogCollector(Path({str(work / 'state')!r}), paths=[Path({str(log)!r})], use_journal=False)\n"
                "for _ in range(3):\n    s = ListSink(); c.run(s); print(len(s.items), c.status)")
        done = subprocess.run([*prefix, sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                              cwd=Path(__file__).resolve().parents[2], check=False)
    finally:
        shutil.rmtree(work)
    runs = done.stdout.splitlines()
    assert [r.split()[0] for r in runs] == ["1", "0", "0"], done.stderr
    assert all("permission denied" in r for r in runs)


def test_permission_denied_simulated(tmp_path, monkeypatch):
    log = tmp_path / "auth.log"
    log.write_text(line(1))
    collector = make(tmp_path, log)

    def denied(*_a, **_k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("builtins.open", denied)
    sinks = [ListSink() for _ in range(3)]
    for sink in sinks:
        collector.run(sink)
    monkeypatch.undo()
    assert [[i.type for i in s.items] for s in sinks] == [["agent.error"], [], []]
    assert "permission denied" in sinks[0].items[0].data["error"]
    assert collector.status.startswith("error:") and collector.stats.errors == 1


def test_brute_force_burst_of_ten_thousand_lines(tmp_path):
    log = tmp_path / "auth.log"
    log.write_text("")
    collector = make(tmp_path, log, max_lines_per_run=5000)
    ports(collector)
    with open(log, "a") as fh:
        for n in range(10_000):
            ip = f"2001:db8::{n % 50:x}" if n % 2 else f"203.0.113.{n % 50}"
            fh.write(f"Nov 22 03:05:50 web01 sshd[{n}]: Invalid user u{n} from {ip} port {n}\n")
            fh.write(line(n, ip))
            fh.write(f"Nov 22 03:05:50 web01 sshd[{n}]: pam_unix(sshd:auth): check pass; user unknown\n")
    sink = ListSink()
    per_run = []
    for _ in range(7):  # 30,000 lines at 5,000 per run
        before = len(sink.items)
        collector.run(sink)
        per_run.append(len(sink.items) - before)
    assert per_run[-1] == 0 and max(per_run) <= 5000
    assert len(sink.items) == 20_000
    assert collector.counters["recognised"] == 20_000 and collector.counters["ignored"] == {"noise": 10_000}
    assert len({i.data["source_ip"] for i in sink.items}) == 50
    validate(sink.items)


def test_tail_state_is_small_json(tmp_path):
    log = tmp_path / "auth.log"
    append(log, 0, 3)
    tail = FileTail(tmp_path / "pos.json", [log], start_at_end=False)
    assert len(tail.read()) == 3
    tail.commit()
    state = (tmp_path / "pos.json").read_text()
    assert '"inode"' in state and '"offset"' in state


def test_start_at_end_does_not_cut_a_line_being_written(tmp_path):
    log = tmp_path / "auth.log"
    log.write_text(line(1) + line(2)[:30])
    collector = make(tmp_path, log)
    assert ports(collector) == []
    with open(log, "a") as fh:
        fh.write(line(2)[30:])
    assert ports(collector) == [2]


def test_damaged_position_file_is_treated_as_none(tmp_path):
    log = tmp_path / "auth.log"
    append(log, 0, 2)
    (tmp_path / "state").mkdir()
    for garbage in ("{not json", '{"offset": "x"}', '{"offset": 5, "head": "zz"}', "[1, 2]"):
        (tmp_path / "state" / "authlog-position.json").write_text(garbage)
        assert ports(make(tmp_path, log, start_at_end=False)) == [0, 1]
