"""FIM rescans on real files: actions, changed attributes, hashing rules, restarts."""

from __future__ import annotations

import hashlib
import os

from agent.collectors.fim import FimCollector
from tests.agent.test_fim_support import changes, make, run


def test_first_run_builds_the_baseline_silently(tmp_path):
    c, w = make(tmp_path)
    (w / "a").write_text("hello")
    (w / "sub").mkdir()
    (w / "sub" / "b").write_text("b")
    assert run(c) == []
    assert c.counters["files"] == 4  # w, a, sub, sub/b
    assert run(c) == []


def test_create_modify_delete(tmp_path):
    c, w = make(tmp_path)
    (w / "old").write_text("old")
    run(c)
    (w / "new").write_text("new")
    (w / "old").write_text("changed!")
    got = changes(c)
    assert got[str(w / "new")]["action"] == "created"
    assert got[str(w / "new")]["sha256"] == hashlib.sha256(b"new").hexdigest()
    mod = got[str(w / "old")]
    assert mod["action"] == "modified" and mod["scan"] == "rescan"
    assert mod["changed_attributes"]["size"] == {"old": 3, "new": 8}
    assert mod["changed_attributes"]["sha256"] == {"old": hashlib.sha256(b"old").hexdigest(),
                                                   "new": hashlib.sha256(b"changed!").hexdigest()}
    (w / "old").unlink()
    got = changes(c)
    assert got[str(w / "old")]["action"] == "deleted"
    assert got[str(w / "old")]["sha256"] == hashlib.sha256(b"changed!").hexdigest()
    assert changes(c) == {}


def test_chmod_and_chown_are_attribute_changes(tmp_path):
    c, w = make(tmp_path)
    f = w / "conf"
    f.write_text("x")
    f.chmod(0o644)
    run(c)
    os.chown(f, 1234, -1)  # before chmod: chown clears the setuid bit
    f.chmod(0o4755)
    ev = changes(c)[str(f)]
    assert ev["action"] == "attributes"
    assert ev["changed_attributes"]["mode"] == {"old": "0644", "new": "4755"}
    assert ev["changed_attributes"]["uid"] == {"old": 0, "new": 1234}
    assert "sha256" not in ev["changed_attributes"] and ev["mode"] == "4755" and ev["uid"] == 1234


def test_replace_file_by_symlink_records_kind_and_target_never_follows(tmp_path):
    c, w = make(tmp_path)
    f = w / "passwd"
    f.write_text("root:x:0:0")
    run(c)
    f.unlink()
    f.symlink_to("/etc/shadow")
    ev = changes(c)[str(f)]
    assert ev["action"] == "modified" and ev["kind"] == "symlink"
    assert ev["changed_attributes"]["kind"] == {"old": "file", "new": "symlink"}
    assert ev["changed_attributes"]["target"] == {"old": None, "new": "/etc/shadow"}
    assert ev["sha256"] is None and ev["target"] == "/etc/shadow"
    os.unlink(f)
    f.symlink_to("/tmp/elsewhere")  # retargeting a symlink is a change too
    assert changes(c)[str(f)]["changed_attributes"]["target"]["new"] == "/tmp/elsewhere"


def test_symlinked_directory_is_not_walked(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("s")
    c, w = make(tmp_path)
    (w / "link").symlink_to(outside)
    run(c)
    (outside / "secret").write_text("changed")
    assert changes(c) == {}


def test_hash_is_reused_while_metadata_is_unchanged(tmp_path):
    c, w = make(tmp_path)
    f = w / "bin"
    f.write_bytes(b"AAAA")
    run(c)
    st = os.stat(f)
    with open(f, "r+b") as fh:  # same size, same inode, mtime put back: no rehash, so no event
        fh.write(b"BBBB")
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert changes(c) == {}
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # mtime moved: rehashed
    ev = changes(c)[str(f)]
    assert ev["action"] == "modified"
    assert ev["changed_attributes"]["sha256"]["new"] == hashlib.sha256(b"BBBB").hexdigest()


def test_large_files_are_not_hashed_and_hashing_can_be_switched_off(tmp_path):
    c, w = make(tmp_path, max_file_bytes=1000, path_options={str(tmp_path / "w" / "nohash"): {"hash": False}})
    (w / "nohash").mkdir()
    run(c)
    (w / "big").write_bytes(b"x" * 1001)
    (w / "small").write_bytes(b"x" * 1000)
    (w / "nohash" / "f").write_text("x")
    got = changes(c)
    assert got[str(w / "big")]["sha256"] is None and got[str(w / "big")]["size"] == 1001
    assert got[str(w / "small")]["sha256"] == hashlib.sha256(b"x" * 1000).hexdigest()
    assert got[str(w / "nohash" / "f")]["sha256"] is None
    assert c.counters["not_hashed_too_large"] == 1


def test_special_files_are_recorded_not_opened(tmp_path):
    c, w = make(tmp_path)
    run(c)
    os.mkfifo(w / "fifo")  # opening a fifo for reading would block the agent forever
    ev = changes(c)[str(w / "fifo")]
    assert ev["kind"] == "other" and ev["sha256"] is None


def test_directory_deleted_and_recreated(tmp_path):
    c, w = make(tmp_path)
    d = w / "site"
    d.mkdir()
    (d / "index.html").write_text("hi")
    run(c)
    (d / "index.html").unlink()
    d.rmdir()
    got = changes(c)
    assert {got[str(d)]["action"], got[str(d / "index.html")]["action"]} == {"deleted"}
    d.mkdir()
    (d / "index.html").write_text("hacked")
    got = changes(c)
    assert got[str(d)]["action"] == "created" and got[str(d / "index.html")]["action"] == "created"


def test_web_root_changes_are_flagged(tmp_path):
    web = tmp_path / "www"
    web.mkdir()
    c, w = make(tmp_path, web_roots=[str(web)])
    assert str(web) in c.policy.roots
    run(c)
    (web / "index.php").write_text("<?php system($_GET['c']);")
    (w / "other").write_text("x")
    got = changes(c)
    assert got[str(web / "index.php")]["web_root"] is True
    assert got[str(w / "other")]["web_root"] is False


def test_include_and_exclude_globs(tmp_path):
    c, w = make(tmp_path, include=["*.conf"], exclude=["*/cache"])
    (w / "cache").mkdir()
    run(c)
    (w / "a.conf").write_text("x")
    (w / "a.log").write_text("x")
    (w / "cache" / "b.conf").write_text("x")
    assert set(changes(c)) == {str(w / "a.conf")}


def test_missing_path_is_watched_once_it_appears(tmp_path):
    c, _w = make(tmp_path, paths=[str(tmp_path / "later")])
    assert run(c) == []
    assert c.status()["missing"] == [str(tmp_path / "later")] and c.counters["missing_paths"] == 1
    (tmp_path / "later").mkdir()
    (tmp_path / "later" / "f").write_text("x")
    got = changes(c)
    assert got[str(tmp_path / "later" / "f")]["action"] == "created"
    assert c.counters["missing_paths"] == 0


def test_restart_finds_offline_changes_without_duplicates(tmp_path):
    c, w = make(tmp_path, rescan_every_s=3600)
    (w / "keep").write_text("k")
    (w / "gone").write_text("g")
    run(c)
    (w / "new").write_text("n")
    c.close()
    (w / "gone").unlink()  # while the agent is down
    (w / "late").write_text("l")
    c2 = FimCollector(tmp_path / "state", paths=[str(w)], web_roots=[], rescan_every_s=3600)
    got = changes(c2)
    assert {p: e["action"] for p, e in got.items()} == {
        str(w / "gone"): "deleted", str(w / "late"): "created", str(w / "new"): "created"}
    assert all(e["scan"] == "rescan" for e in got.values())
    assert changes(c2) == {}  # no rescan due, nothing queued
    c2.close()
    c3 = FimCollector(tmp_path / "state", paths=[str(w)], web_roots=[])
    assert changes(c3) == {}  # persisted: a second restart re-emits nothing
    c3.close()


def test_web_roots_are_detected_from_globs(tmp_path):
    from agent.collectors.fim.paths import detect_web_roots

    (tmp_path / "tomcat9" / "webapps").mkdir(parents=True)
    (tmp_path / "www").mkdir()
    patterns = [str(tmp_path / "www"), str(tmp_path / "nginx"), str(tmp_path / "tomcat*" / "webapps")]
    assert detect_web_roots(patterns) == [str(tmp_path / "www"), str(tmp_path / "tomcat9" / "webapps")]
