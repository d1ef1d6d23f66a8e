"""``khien attest``: submit M1–M3 attestations with evidence files, review them, list them.

The command acts with administrator rights (whoever runs it can reach the database anyway) and
records ``--by`` as the person acting, who must be a known user; a review needs an administrator.
"""

from __future__ import annotations

import argparse
import contextlib
import json
from collections.abc import Callable
from pathlib import Path

from khien.cli_common import UsageError, acting_user, database, settings_of

ITEM_CHOICES = ("level_approved", "plan_implemented", "rules_and_officer", "independent_assessment", "training",
                "drill", "soc_coverage", "national_connection", "recent_backup", "offline_copy", "restore_test")


def cmd_attest_submit(args: argparse.Namespace) -> None:
    from collector.attestations import evidence
    from collector.attestations import service as attestations
    from collector.scope import Scope
    from collector.types import utcnow

    settings = settings_of(args)
    paths = [Path(p) for p in args.file or []]
    for path in paths:
        if not path.is_file():
            raise UsageError(f"{path}: no such file")
    db = database(args)
    staged = []
    try:
        # Every file is checked (and scanned) before anything is written: one bad file stores nothing.
        for path in paths:
            with path.open("rb") as fh:
                staged.append(evidence.stage(data_dir=settings.data_dir, max_bytes=settings.evidence_max_bytes,
                                             filename=path.name, stream=fh))
        with db.transaction() as session:
            user = acting_user(session, args.by)
            operator = attestations.Operator(username=user.username)
            now, scope = utcnow(), Scope.everything()
            row = attestations.submit(session, scope=scope, user=operator, unit_code=args.unit, item=args.item,
                                      period=args.period, note=args.note, now=now)
            files = []
            while staged:
                files.append(attestations.attach_staged(session, attestation_id=row.id, staged=staged.pop(0),
                                                        user=operator, scope=scope, now=now))
    finally:
        for s in staged:
            s.discard()
    print(f"attestation {row.id}: {row.item} {row.period} for unit {args.unit} submitted by {row.submitted_by}, "
          f"{len(files)} file(s)")
    for f in files:
        print(f"  file {f.id}: {f.filename} ({f.content_type}, {f.size} bytes, sha256 {f.sha256[:16]}…)")


def cmd_attest_review(args: argparse.Namespace) -> None:
    from collector.attestations import service as attestations
    from collector.types import utcnow

    with database(args).transaction() as session:
        user = acting_user(session, args.by)
        row = attestations.review(session, attestation_id=args.id, rating=args.rating, comment=args.comment,
                                  reviewer=user.username, reviewer_role=user.role, now=utcnow())
    print(f"attestation {row.id}: {row.item} {row.period} rated {row.rating} ({row.rating_value:g}) "
          f"by {row.reviewed_by}")


def cmd_attest_list(args: argparse.Namespace) -> None:
    from collector.attestations import service as attestations
    from collector.attestations.models import AttestationPublic
    from collector.scope import Scope
    from collector.units import service as units

    with database(args).session() as session:
        unit_id = units.get_by_code(session, code=args.unit).id if args.unit else None
        rows = attestations.list_(session, scope=Scope.everything(), unit_id=unit_id, period=args.period,
                                  item=args.item, status=args.status)
        codes = units.codes_by_id(session)
        counts = {r.id: len(attestations.files(session, scope=Scope.everything(), attestation_id=r.id))
                  for r in rows}
    if args.format == "json":
        items = [AttestationPublic(**r.model_dump(), unit=codes.get(r.unit_id)).model_dump(mode="json")
                 | {"files": counts[r.id]} for r in rows]
        print(json.dumps(items, ensure_ascii=False, indent=2))
        return
    print(f"{'ID':>5} {'UNIT':<16} {'ITEM':<24} {'YEAR':>4} {'STATUS':<10} {'RATING':<13} {'FILES':>5} BY")
    for r in rows:
        by = r.reviewed_by or r.submitted_by
        print(f"{r.id:>5} {codes.get(r.unit_id, '-')[:16]:<16} {r.item:<24} {r.period:>4} {r.status:<10} "
              f"{r.rating or '-':<13} {counts[r.id]:>5} {by}")


def _year(text: str) -> int:
    with contextlib.suppress(ValueError):
        if len(text) == 4:
            return int(text)
    raise argparse.ArgumentTypeError(f"expected a year (YYYY), not {text!r}")


def register(sub, command: Callable) -> None:
    """Add ``khien attest`` to the ``khien`` parser (``command`` adds database options)."""
    attest = sub.add_parser("attest", help="attested items (M1–M3): evidence and reviews").add_subparsers(
        dest="action", required=True)
    p = command("submit", cmd_attest_submit, "submit an item for a unit and year, with evidence files", attest)
    p.add_argument("--unit", required=True, help="unit code")
    p.add_argument("--item", required=True, choices=ITEM_CHOICES)
    p.add_argument("--period", required=True, type=_year, metavar="YYYY", help="the calendar year it covers")
    p.add_argument("--note")
    p.add_argument("--file", action="append", metavar="PATH", help="evidence file (repeatable)")
    p.add_argument("--by", required=True, help="username of the person submitting (recorded)")
    p = command("review", cmd_attest_review, "rate a submitted attestation (administrators)", attest)
    p.add_argument("id", type=int)
    p.add_argument("--rating", required=True, choices=["dat", "dat_mot_phan", "chua_dat"],
                   help="Đạt (1) / Đạt một phần (0.5) / Chưa đạt (0)")
    p.add_argument("--comment", help="required unless the rating is dat")
    p.add_argument("--by", required=True, help="username of the reviewing administrator (recorded)")
    p = command("list", cmd_attest_list, "list attestations", attest)
    p.add_argument("--unit", help="unit code")
    p.add_argument("--period", type=_year, metavar="YYYY")
    p.add_argument("--item", choices=ITEM_CHOICES)
    p.add_argument("--status", choices=["submitted", "rated", "withdrawn"])
    p.add_argument("--format", choices=["table", "json"], default="table")
