"""collector.bulk.insert_many stores exactly what a normal SQLAlchemy insert stores, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select

from collector.bulk import insert_many
from collector.findings.models import Finding
from collector.units import service as units
from tests.collector import helpers as h

FINDINGS = Finding.__table__
NOW = datetime(2026, 11, 22, 9, 30, 15, 123456, tzinfo=UTC)


def rows(unit_id: int, prefix: str, n: int) -> list[dict]:
    shared = {"package": "openssl", "binaries": [{"name": "libssl3", "version": "3.0.11-1~deb12u1"}], "n": 1.5}
    out = []
    for i in range(n):
        due = NOW + timedelta(days=i % 3)
        out.append({
            "unit_id": unit_id, "host_id": None, "address": f"127.0.0.{i}", "identity": f"addr:{unit_id}:{i}",
            "kind": "exposure", "rule": f"rule-{i % 2}", "location": "tcp/22", "dedupe_key": f"{prefix}{i:04d}",
            "generation": i % 2, "title": "Nguồn <script>x</script> — ổn", "finding_class": "P1" if i % 2 else "P4",
            "cvss_score": [None, 9.8, 1.0][i % 3], "cvss_vector": None, "fix_available": bool(i % 2),
            "distro_state": None, "fixed_version": None, "status": "open", "sources": "scan",
            # the same document object shared by rows, and documents that differ per row
            "evidence": shared if i % 2 else {"i": i, "ok": True, "text": "ổn"},
            "obs_hash": "h", "first_seen": NOW, "last_seen": NOW, "clock_start": NOW - timedelta(hours=7),
            "due_at": due, "mitigate_by": None if i % 2 else due, "sla_version": "1", "fixed_at": None,
            "fixed_proof": None, "reopened_count": 0})
    return out


def stored(db, prefix: str) -> list[tuple]:
    with db.session() as s:
        found = s.execute(select(FINDINGS).where(FINDINGS.c.dedupe_key.like(prefix + "%"))
                          .order_by(FINDINGS.c.dedupe_key)).all()
    return [tuple(r)[1:] for r in found]  # without the id


@pytest.mark.parametrize("chunk", [7, 2000])
def test_insert_many_matches_a_normal_insert(db, chunk):
    h.seed_units(db)
    with db.transaction() as s:
        unit_id = units.get_by_code(s, code="D1").id
        s.connection().execute(insert(FINDINGS), rows(unit_id, "a", 25))
        assert insert_many(s.connection(), FINDINGS, rows(unit_id, "b", 25), chunk=chunk) == 25
        assert insert_many(s.connection(), FINDINGS, []) == 0
    normal, bulk = stored(db, "a"), stored(db, "b")
    assert len(bulk) == 25
    key = [c.name for c in FINDINGS.columns][1:].index("dedupe_key")
    assert [r[:key] + r[key + 1:] for r in bulk] == [r[:key] + r[key + 1:] for r in normal]
    # read back as the application reads it: aware datetimes, decoded documents, NULLs kept
    first = bulk[0]
    cols = [c.name for c in FINDINGS.columns][1:]
    assert first[cols.index("first_seen")] == NOW
    assert first[cols.index("evidence")] == {"i": 0, "ok": True, "text": "ổn"}
    assert bulk[1][cols.index("evidence")]["binaries"][0]["version"] == "3.0.11-1~deb12u1"
    assert first[cols.index("cvss_score")] is None and bulk[1][cols.index("cvss_score")] == 9.8
    assert bulk[1][cols.index("mitigate_by")] is None and first[cols.index("mitigate_by")] == NOW


def test_insert_many_refuses_what_a_normal_insert_refuses(db):
    """The column types' own processors run: a naive datetime is refused, and nothing is stored."""
    h.seed_units(db)
    with db.session() as s:
        unit_id = units.get_by_code(s, code="D1").id
    bad = rows(unit_id, "c", 3)
    bad[2]["due_at"] = datetime(2026, 11, 22, 9, 0)
    with pytest.raises(Exception, match="naive datetime"), db.transaction() as s:
        insert_many(s.connection(), FINDINGS, bad)
    assert stored(db, "c") == []
