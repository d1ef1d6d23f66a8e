"""`khien feeds import` as an operator runs it: all-or-nothing, a no-op on the same file, a newer version
replacing the older atomically, an older one refused, progress on stderr; and `khien feeds list`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from sqlalchemy import func
from sqlmodel import select

from collector.db import Database
from collector.vulns.models import Feed, KnownExploitedRow, VulnRecord
from tests.khien.test_cli import run

FIXTURES = Path(__file__).resolve().parents[1] / "rules" / "fixtures" / "feeds"


def assert_error(proc, text: str) -> None:
    """Non-zero exit, the error as the last stderr line (progress lines may come before it)."""
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("khien: error:") and text in last, proc.stderr


def counts(db_url: str) -> tuple[int, int, int]:
    db = Database(db_url)
    with db.session() as s:
        out = (s.exec(select(func.count()).select_from(Feed)).one(),
               s.exec(select(func.count()).select_from(VulnRecord)).one(),
               s.exec(select(func.count()).select_from(KnownExploitedRow)).one())
    db.dispose()
    return out


def test_import_is_all_or_nothing_idempotent_and_versioned(db_url, tmp_path):
    kev = json.loads((FIXTURES / "kev.json").read_text())
    broken = tmp_path / "broken-kev.json"
    broken.write_text(json.dumps(kev | {"count": 99}))
    proc = run(db_url, "feeds", "import", str(FIXTURES / "debian-tracker.json"), str(broken))
    assert proc.returncode == 1 and "count" in proc.stderr and "nothing imported" in proc.stderr, proc.stderr
    assert counts(db_url) == (0, 0, 0)  # the valid tracker file before it was not imported either

    proc = run(db_url, "feeds", "import", str(FIXTURES / "debian-tracker.json"), str(FIXTURES / "kev.json"),
               str(FIXTURES / "osv" / "debian"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count(": imported") == 3 and "records" in proc.stderr  # progress lines
    feeds, records, kev_rows = counts(db_url)
    assert feeds == 3 and records > 0 and kev_rows == 5
    again = run(db_url, "feeds", "import", str(FIXTURES / "kev.json"))
    assert again.returncode == 0 and "unchanged" in again.stdout
    assert counts(db_url) == (3, records, 5)

    newer = tmp_path / "kev-newer.json"
    kev2 = kev | {"catalogVersion": "2026.11.21", "count": 4, "vulnerabilities": kev["vulnerabilities"][:4]}
    newer.write_text(json.dumps(kev2))
    proc = run(db_url, "feeds", "import", str(newer))
    assert proc.returncode == 0 and "replaced" in proc.stdout and "replaces feed" in proc.stdout, proc.stdout
    assert counts(db_url) == (4, records, 4)  # old KEV rows gone, its feed row kept as history
    older = tmp_path / "kev-older.json"
    older.write_text(json.dumps(kev | {"catalogVersion": "2026.01.01"}))
    assert_error(run(db_url, "feeds", "import", str(older)), "older than the imported version")
    assert counts(db_url) == (4, records, 4)

    listing = run(db_url, "feeds", "list", "--all")
    assert listing.returncode == 0 and "cisa-kev" in listing.stdout and "replaced" in listing.stdout
    assert_error(run(db_url, "feeds", "import", str(tmp_path / "missing.json")), "no such file")


def test_import_of_a_zip_and_unknown_format(db_url, tmp_path):
    archive = shutil.make_archive(str(tmp_path / "Debian-all"), "zip", FIXTURES / "osv" / "debian")
    proc = run(db_url, "feeds", "import", archive)
    assert proc.returncode == 0 and "osv:Debian" in proc.stdout, proc.stderr
    junk = tmp_path / "notes.txt"
    junk.write_text("this is not a feed\n")
    proc = run(db_url, "feeds", "import", str(junk))
    assert proc.returncode == 1 and str(junk) in proc.stderr and "nothing imported" in proc.stderr
