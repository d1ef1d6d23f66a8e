"""``khien attest``: submit with evidence files, review, list — as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys

from collector.attestations.models import ITEM_IDS
from collector.db import Database
from collector.types import utcnow
from khien.cli_attest import ITEM_CHOICES
from tests.collector import helpers as h

KHIEN = [sys.executable, "-m", "khien.cli"]
YEAR = str(utcnow().year)
PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


def run(db_url: str, data_dir, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*KHIEN, *args, "--database-url", db_url, "--data-dir", str(data_dir)],
                          capture_output=True, text=True, timeout=120)


def one_line_error(proc: subprocess.CompletedProcess, text: str) -> bool:
    lines = proc.stderr.strip().splitlines()
    return proc.returncode != 0 and len(lines) == 1 and text in lines[0] and "Traceback" not in proc.stderr


def test_item_choices_are_the_model_items():
    assert ITEM_CHOICES == ITEM_IDS


def test_submit_with_files_review_and_list(db_url, tmp_path):
    db = Database(db_url)
    h.seed_units(db)
    h.add_user(db, "boss", "admin")
    h.add_user(db, "off1", "unit_officer", "D1")
    db.dispose()
    data_dir = tmp_path / "data"
    (tmp_path / "bien-ban.pdf").write_bytes(PDF)
    (tmp_path / "danh-sach.csv").write_text("họ tên,đơn vị\nNguyễn Văn A,D1\n", encoding="utf-8")
    (tmp_path / "tool.exe").write_bytes(b"MZ\x90\x00" + bytes(64))

    bad = run(db_url, data_dir, "attest", "submit", "--unit", "D1", "--item", "drill", "--period", YEAR,
              "--file", str(tmp_path / "bien-ban.pdf"), "--file", str(tmp_path / "tool.exe"), "--by", "off1")
    assert one_line_error(bad, "Windows executable"), bad.stderr
    listed = run(db_url, data_dir, "attest", "list", "--format", "json")
    assert listed.returncode == 0 and json.loads(listed.stdout) == []  # one bad file: nothing stored
    assert not [p for p in (data_dir / "evidence").rglob("*") if p.is_file()]

    made = run(db_url, data_dir, "attest", "submit", "--unit", "D1", "--item", "drill", "--period", YEAR,
               "--note", "diễn tập tháng 10", "--file", str(tmp_path / "bien-ban.pdf"),
               "--file", str(tmp_path / "danh-sach.csv"), "--by", "off1")
    assert made.returncode == 0, made.stderr
    assert "2 file(s)" in made.stdout
    attestation_id = made.stdout.split()[1].rstrip(":")
    assert len([p for p in (data_dir / "evidence").rglob("*") if p.is_file()]) == 2

    assert one_line_error(run(db_url, data_dir, "attest", "review", attestation_id, "--rating", "dat",
                              "--by", "off1"), "only administrators")
    assert one_line_error(run(db_url, data_dir, "attest", "review", attestation_id, "--rating", "dat_mot_phan",
                              "--by", "boss"), "needs a comment")
    assert one_line_error(run(db_url, data_dir, "attest", "review", attestation_id, "--rating", "dat",
                              "--by", "nobody"), "unknown user")
    rated = run(db_url, data_dir, "attest", "review", attestation_id, "--rating", "dat_mot_phan",
                "--comment", "thiếu kịch bản diễn tập", "--by", "boss")
    assert rated.returncode == 0 and "dat_mot_phan (0.5)" in rated.stdout, rated.stderr

    listed = run(db_url, data_dir, "attest", "list", "--unit", "D1", "--period", YEAR, "--format", "json")
    assert listed.returncode == 0, listed.stderr
    [item] = json.loads(listed.stdout)
    assert (item["unit"], item["item"], item["status"], item["rating"], item["rating_value"], item["files"]) == \
        ("D1", "drill", "rated", "dat_mot_phan", 0.5, 2)
    assert (item["submitted_by"], item["reviewed_by"], item["note"]) == ("off1", "boss", "diễn tập tháng 10")
    table = run(db_url, data_dir, "attest", "list")
    assert table.returncode == 0 and "drill" in table.stdout and "dat_mot_phan" in table.stdout
    assert one_line_error(run(db_url, data_dir, "attest", "submit", "--unit", "NOPE", "--item", "drill",
                              "--period", YEAR, "--by", "boss"), "unknown unit code")
    assert run(db_url, data_dir, "attest", "list", "--period", "26").returncode != 0
