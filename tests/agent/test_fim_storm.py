"""FIM under load: paced rescans, and realtime that stops itself in an event storm and comes back.

Real files, the real watchdog observer and real inotify (the kernel-overflow test starves the
observer thread of the GIL so the kernel's own queue really overflows).
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from watchdog.observers import inotify_c

from agent.collectors.fim.realtime import PathQueue
from tests.agent.test_fim_support import make, poll, run, settle

pytestmark = pytest.mark.filterwarnings("ignore:Callback with id:RuntimeWarning")

UNLIMITED = {"burst_per_dir": 10**6, "burst_total": 10**6}  # every change as its own event


def tree(root: Path, dirs: int, files: int) -> list[Path]:
    made = []
    for d in range(dirs):
        (root / f"d{d:02d}").mkdir()
        for f in range(files):
            path = root / f"d{d:02d}" / f"f{f:02d}"
            path.write_text("v1")
            made.append(path)
    return made


def test_queue_is_bounded_fifo_and_says_once_that_it_filled():
    full = []
    queue = PathQueue(max_size=4, on_full=lambda: full.append(1))
    for name in ["/a", "/b", "/a", "/c", "/d", "/e", "/f"]:
        queue.add(name)
    assert queue.take(3) == ["/a", "/b", "/c"] and len(queue) == 1
    assert full == [1]  # /e and /f were lost: one signal, not one per path
    assert queue.clear() is True and len(queue) == 0 and queue.clear() is False


def test_a_rescan_is_spread_over_runs_one_directory_at_a_time(tmp_path):
    c, w = make(tmp_path, rescan_every_s=3600, slice_ms=0.001, **UNLIMITED)
    files = tree(w, dirs=12, files=5)
    assert settle(c) == []  # the baseline, and the pass after it
    done = c.counters["rescans"]
    for path in files:
        path.write_text("v2")
    c.last_rescan = -1e9  # a periodic rescan is due
    per_run: list[set[str]] = []
    progress: list[int] = []
    for _ in range(40):
        found = {i.data["path"] for i in run(c) if i.type == "file.change"}
        progress.append(c.counters["rescan_percent"])
        per_run.append(found)
        if c.walk is None:
            break
    assert c.walk is None and c.counters["rescans"] == done + 1
    runs_with_changes = [found for found in per_run if found]
    assert len(runs_with_changes) == 12  # the tiny slice lets one directory through per run
    assert all(len({Path(p).parent for p in found}) == 1 for found in runs_with_changes)
    assert set().union(*per_run) == {str(p) for p in files}  # every change, each exactly once
    assert sum(len(found) for found in per_run) == len(files)
    assert progress[:-1] == sorted(progress[:-1]) and 0 < max(progress) < 100 and progress[-1] == 0


def test_realtime_is_paced_within_the_slice_and_nothing_is_lost(tmp_path):
    c, w = make(tmp_path, rescan_every_s=3600, slice_ms=0.001, **UNLIMITED)
    settle(c)
    names = [w / f"n{i}" for i in range(30)]
    for path in names:
        path.write_text("x")
        c.queue.add(str(path))  # as the observer would
    first = [i for i in run(c) if i.type == "file.change"]
    assert len(first) == 1 and len(c.queue) == 29  # the rest waits for later runs
    seen = {i.data["path"] for _ in range(40) for i in run(c) if i.type == "file.change"}
    assert seen | {first[0].data["path"]} == {str(p) for p in names} and len(c.queue) == 0


@pytest.fixture
def stormy(tmp_path):
    c, w = make(tmp_path, rescan_every_s=3600, queue_size=50, **UNLIMITED)
    files = tree(w, dirs=10, files=40)
    assert run(c) == []
    c.start()
    assert settle(c) == []
    yield c, w, files
    c.close()


def wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


def test_a_storm_drops_the_watches_and_a_rescan_finds_every_change(stormy):
    c, w, files = stormy
    done = c.counters["rescans"]
    assert c.watcher.running and c.watcher.watches
    for path in files:  # an "upgrade": 400 files rewritten, far more than the queue holds
        path.write_text("v2")
    wait_for(lambda: c.watcher.storm is not None)
    assert "changed paths waiting" in c.watcher.storm
    wait_for(lambda: not c.watcher.observer.emitters)  # the observer thread dropped its watches itself
    items = run(c)
    changed = {i.data["path"] for i in items if i.type == "file.change" and i.data["action"] == "modified"}
    assert changed == {str(p) for p in files}
    assert all(i.data["scan"] == "rescan" for i in items if i.type == "file.change")
    assert c.counters["realtime_suspended"] == 1 and c.counters["queue_overflow"] == 1
    # The storm pass ended within the run (no slice here): realtime is back, and the second pass
    # that closes the gap is under way.
    assert c.watcher.running and c.watcher.storm is None and c.walk is not None and c.walk.reason == "after storm"
    assert not [i for i in run(c) if i.type == "file.change"]  # nothing new, nothing twice
    assert c.walk is None and c.counters["rescans"] == done + 2 and c.counters["realtime_active"] == 1
    (w / "d03" / "f07").write_text("after the storm")
    poll(c, lambda i: i.data.get("path") == str(w / "d03" / "f07") and i.data.get("scan") == "realtime")


def test_changes_behind_a_paced_storm_rescan_are_found_by_the_second_pass(stormy):
    c, w, files = stormy
    c.slice_ms = 0.001  # one directory per run: the storm pass takes many runs
    done = c.counters["rescans"]
    for path in files:
        path.write_text("v2")
    wait_for(lambda: c.watcher.storm is not None)
    run(c)  # suspends realtime and compares the first directories
    assert c.walk is not None and c.walk.reason == "storm" and not c.watcher.running
    late = w / "late.txt"  # the root directory was compared already and nothing watches it now
    late.write_text("written while realtime was off")
    seen: list = []
    for _ in range(200):
        seen += [i for i in run(c) if i.type == "file.change"]
        if c.walk is None:
            break
    assert c.walk is None and c.counters["rescans"] == done + 2
    late_events = [i.data for i in seen if i.data["path"] == str(late)]
    assert len(late_events) == 1 and late_events[0]["action"] == "created"
    assert {i.data["path"] for i in seen if i.data["action"] == "modified"} == {str(p) for p in files}


def test_kernel_queue_overflow_is_noticed_and_covered_by_a_rescan(tmp_path, monkeypatch):
    max_queued = int(Path("/proc/sys/fs/inotify/max_queued_events").read_text())
    c, w = make(tmp_path, rescan_every_s=3600, queue_size=10**6)  # only the kernel's queue can overflow
    # A gate in front of watchdog's reads of the inotify descriptor: closed while the writer runs, so the
    # kernel's queue overflows every time (a busy machine or a lucky scheduler cannot drain it first).
    reader = getattr(inotify_c, "InotifyFD", None) or inotify_c.Inotify
    unread, original = threading.Event(), reader.read_events
    unread.set()

    def gated_read(self, *args, **kwargs):
        unread.wait()
        return original(self, *args, **kwargs)

    monkeypatch.setattr(reader, "read_events", gated_read)
    run(c)
    c.start()
    try:
        settle(c)
        count = max_queued * 2  # each file creation is at least one event (IN_CREATE), plus writes
        writer = [sys.executable, "-c", "import os,sys\nfor i in range(int(sys.argv[2])):\n"
                  "    open(os.path.join(sys.argv[1], f'x{i}'), 'w').close()", str(w), str(count)]
        unread.clear()
        try:
            proc = subprocess.run(writer, timeout=300)
        finally:
            unread.set()
        assert proc.returncode == 0
        wait_for(lambda: c.watcher.storm is not None, timeout=30)
        assert "kernel" in c.watcher.storm
        items = [i.data for i in run(c) if i.type == "file.change"]
        single = [d for d in items if d["action"] == "created"]
        summary = [d for d in items if d["action"] == "summary"]
        assert len(single) + sum(d["count"] for d in summary) == count  # each file once, most summarised
        assert all(d["scan"] == "rescan" for d in items)
        assert len(c.baseline) == count + 1  # the files and the watched directory
        assert c.counters["realtime_suspended"] == 1 and c.watcher.running
    finally:
        c.close()


def test_the_first_baseline_is_paced_silent_and_followed_by_a_catch_up_pass(tmp_path):
    c, w = make(tmp_path, rescan_every_s=3600, slice_ms=0.001, **UNLIMITED)
    tree(w, dirs=6, files=3)
    c.start()
    try:
        assert run(c) == [] and c.walk is not None and c.walk.reason == "baseline"
        assert not c.watcher.running and not c.watcher.watches  # realtime waits for the baseline
        while c.walk.dirs_done < 1:  # until the watched directory itself has been listed
            assert run(c) == []
        (w / "early.txt").write_text("made after the root was baselined")
        items = []
        while c.walk is not None and c.walk.reason == "baseline":
            items += run(c)
        assert items == [] and len(c.baseline) == 1 + 6 + 6 * 3
        assert c.watcher.running and c.walk.reason == "after baseline"
        items = settle(c)
        assert [(i.data["path"], i.data["action"], i.data["scan"]) for i in items] == [
            (str(w / "early.txt"), "created", "rescan")]
    finally:
        c.close()


def test_pending_says_whether_a_paced_pass_is_unfinished(tmp_path):
    c, w = make(tmp_path, rescan_every_s=3600, slice_ms=0.001)
    tree(w, dirs=4, files=2)
    run(c)
    assert c.pending()  # one directory per run: the baseline is not done
    runs = 1
    while c.pending():
        run(c)
        runs += 1
    assert runs > 4 and c.walk is None and len(c.baseline) == 1 + 4 + 8
