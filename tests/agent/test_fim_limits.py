"""FIM limits and robustness: bursts, the file cap, unreadable files, a full realtime queue."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from agent.collectors.fim import FimCollector
from tests.agent.test_fim_support import make, run

REPO = Path(__file__).resolve().parents[2]


def test_burst_becomes_one_summary_and_the_baseline_takes_everything(tmp_path):
    c, w = make(tmp_path, burst_per_dir=10, burst_total=50)
    (w / "lib").mkdir()
    run(c)
    for i in range(500):
        (w / "lib" / f"f{i:03}").write_text(str(i))
    items = run(c)
    singles = [i for i in items if i.data["action"] == "created"]
    summaries = [i for i in items if i.data["action"] == "summary"]
    assert len(singles) == 10 and len(summaries) == 1
    s = summaries[0].data
    assert s["count"] == 490 and s["reason"] == "burst" and s["path"] == str(w / "lib")
    assert len(s["sample_paths"]) == 20 and all(p.startswith(str(w / "lib")) for p in s["sample_paths"])
    assert c.counters["summarised_burst"] == 490
    assert run(c) == []  # every file is in the baseline despite the summary
    assert c.counters["files"] == 502


def test_overall_limit_spans_directories(tmp_path):
    c, w = make(tmp_path, burst_per_dir=100, burst_total=30)
    run(c)
    for d in range(10):
        (w / f"d{d}").mkdir()
        for i in range(10):
            (w / f"d{d}" / str(i)).write_text("x")
    items = run(c)
    summary = [i.data for i in items if i.data["action"] == "summary"]
    assert len(items) == 31 and summary[0]["count"] == 110 - 30 and summary[0]["path"] == str(w)


def test_file_cap_is_reported_once(tmp_path):
    c, w = make(tmp_path, max_files=5)
    for i in range(10):
        (w / str(i)).write_text("x")
    items = run(c)
    errors = [i for i in items if i.type == "agent.error"]
    assert len(errors) == 1 and "file cap" in errors[0].data["error"]
    assert c.counters["files"] == 5 and c.counters["file_cap"] > 0
    assert [i for i in run(c) if i.type == "agent.error"] == []


SCRIPT = """
import json, os, sys
from agent.collectors.base import ListSink
from agent.collectors.fim import FimCollector
# Drop to nobody only after importing: the interpreter's stdlib lives under /root here.
os.setgid(65534); os.setuid(65534)
c = FimCollector(sys.argv[1], paths=[sys.argv[2]], web_roots=[], rescan_every_s=0)
sink = ListSink()
c.run(sink)
c.run(sink)
print(json.dumps({"status": c.stats.status, "counters": dict(c.counters),
                  "items": [i.to_dict() for i in sink.items]}))
"""


def test_permission_denied_is_reported_not_fatal():
    """As a real non-root user: a chmod 000 file is counted and reported, the rest is still hashed."""
    with tempfile.TemporaryDirectory(dir="/tmp") as top:
        os.chmod(top, 0o755)
        watched, state = Path(top, "w"), Path(top, "state")
        watched.mkdir()
        state.mkdir()
        os.chown(state, 65534, 65534)
        (watched / "secret").write_text("s")
        (watched / "secret").chmod(0o000)
        (watched / "ok").write_text("ok")
        out = subprocess.run([sys.executable, "-c", SCRIPT, str(state), str(watched)], cwd=REPO,
                             capture_output=True, text=True, timeout=60, check=True)
        result = json.loads(out.stdout)
    assert result["status"] == "ok"
    assert result["counters"]["unreadable"] == 1 and result["counters"]["files"] == 3
    errors = [i["data"] for i in result["items"] if i["type"] == "agent.error"]
    assert len(errors) == 1 and "secret" in errors[0]["error"] and "Permission denied" in errors[0]["error"]


def test_queue_overflow_falls_back_to_a_rescan(tmp_path):
    c, w = make(tmp_path, queue_size=3, rescan_every_s=3600)
    run(c)
    c.start()
    try:
        for i in range(20):
            (w / str(i)).write_text("x")
        c.queue.add(str(w / "x1"))  # the observer may be slower than this test: fill it for sure
        for n in range(4):
            c.queue.add(str(w / f"y{n}"))
        items = run(c)
    finally:
        c.stop()
    assert c.counters["queue_overflow"] == 1
    created = {i.data["path"] for i in items if i.data.get("action") == "created"}
    assert {str(w / str(i)) for i in range(20)} <= created
    assert all(i.data["scan"] == "rescan" for i in items if i.data.get("path", "").endswith(("/1", "/19")))


def test_collector_reopens_its_persisted_baseline(tmp_path):
    c, w = make(tmp_path)
    (w / "a").write_text("a")
    run(c)
    c.close()
    again = FimCollector(tmp_path / "state", paths=[str(w)], web_roots=[])
    assert len(again.baseline) == 2
    again.close()


def test_corrupt_baseline_is_set_aside_and_rebuilt(tmp_path):
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "fim.db").write_bytes(b"this is not a database" * 100)
    c, w = make(tmp_path)
    (w / "a").write_text("a")
    assert run(c) == []  # rebuilt silently, like a first install
    assert (tmp_path / "state" / "fim.db.corrupt").exists() and c.counters["files"] == 2
    c.close()
