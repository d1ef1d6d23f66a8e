"""``khien`` commands for hosts' classification, exceptions, the local compliance check and rule data."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from khien.cli_common import UsageError, database, duration, first_error, settings_of

# --- hosts and exceptions -------------------------------------------------------------------------

def cmd_host_set(args: argparse.Namespace) -> None:
    from collector.hosts import service as hosts

    if args.level is None and args.internet_facing is None:
        raise UsageError("give --level and/or --internet-facing yes|no")
    facing = None if args.internet_facing is None else args.internet_facing == "yes"
    with database(args).transaction() as session:
        host = hosts.set_classification(session, host_id=args.host_id, security_level=args.level,
                                        internet_facing=facing)
        print(f"host {host.id} ({host.hostname}): level {host.security_level or 'undeclared'}, "
              f"{'internet-facing' if host.internet_facing else 'internal'}")


def cmd_exception_add(args: argparse.Namespace) -> None:
    from collector.compliance.service import builtin_checks
    from collector.exceptions import service as exceptions
    from collector.exceptions.models import RiskExceptionCreate
    from collector.types import utcnow
    from collector.users import service as users

    kind, target = ("check", args.check) if args.check else ("finding", args.finding)
    scope = "host" if args.host is not None else "unit" if args.unit else "all"
    try:
        data = RiskExceptionCreate(target_kind=kind, target=target, scope=scope, unit=args.unit, host_id=args.host,
                                   justification=args.justification, compensating_control=args.compensating,
                                   expires_in_days=_days(args.expires), requested_by=args.requested_by)
    except ValueError as exc:
        raise UsageError(first_error(exc)) from None
    with database(args).transaction() as session:
        approver = users.get_by_username(session, username=args.approver)
        if approver is None:
            raise UsageError(f"unknown user: {args.approver!r}")
        row = exceptions.create(session, data=data, approver=approver.username, approver_role=approver.role,
                                now=utcnow(), known_checks=frozenset(builtin_checks().checks))
        print(f"exception {row.id}: {kind} {target} accepted for {scope} until {row.expires_at:%Y-%m-%d}")


def cmd_exception_list(args: argparse.Namespace) -> None:
    from collector.exceptions import service as exceptions
    from collector.scope import Scope
    from collector.types import utcnow

    now = utcnow()
    with database(args).session() as session:
        rows = exceptions.list_(session, scope=Scope.everything(), status=args.status, now=now)
    print(f"{'ID':>5} {'STATUS':<8} {'KIND':<8} {'TARGET':<40} {'SCOPE':<6} {'EXPIRES':<10} APPROVER")
    for r in rows:
        print(f"{r.id:>5} {r.status_at(now):<8} {r.target_kind:<8} {r.target:<40} {r.scope:<6} "
              f"{r.expires_at:%Y-%m-%d} {r.approved_by}")


def cmd_exception_renew(args: argparse.Namespace) -> None:
    from collector.exceptions import service as exceptions
    from collector.types import utcnow
    from collector.users import service as users

    with database(args).transaction() as session:
        approver = users.get_by_username(session, username=args.approver)
        if approver is None:
            raise UsageError(f"unknown user: {args.approver!r}")
        row = exceptions.renew(session, exception_id=args.id, approver=approver.username,
                               approver_role=approver.role, days=_days(args.expires), now=utcnow())
        print(f"exception {row.id} renewed until {row.expires_at:%Y-%m-%d}")


def cmd_exception_revoke(args: argparse.Namespace) -> None:
    from collector.exceptions import service as exceptions
    from collector.types import utcnow
    from collector.users import service as users

    with database(args).transaction() as session:
        by = users.get_by_username(session, username=args.by)
        if by is None:
            raise UsageError(f"unknown user: {args.by!r}")
        exceptions.revoke(session, exception_id=args.id, by=by.username, by_role=by.role, reason=args.reason,
                          now=utcnow())
    print(f"exception {args.id} revoked")


def _days(text: str) -> int:
    delta = duration(text)
    days = delta.days + (1 if delta.seconds or delta.microseconds else 0)
    if days < 1:
        raise UsageError(f"an exception lasts at least one day, not {text!r}")
    return days


# --- compliance check on this host ----------------------------------------------------------------

def cmd_check(args: argparse.Namespace) -> None:
    import json
    import platform

    from rules.checks import check_report, load_checks, os_family

    if args.facts:
        try:
            text = sys.stdin.read() if args.facts == "-" else Path(args.facts).read_text(encoding="utf-8")
            facts = json.loads(text)
        except (OSError, ValueError) as exc:
            raise UsageError(f"cannot read facts from {args.facts}: {exc}") from None
        if not isinstance(facts, dict):
            raise UsageError("facts must be a JSON object (the output of khien-agent facts)")
    else:
        from agent.collectors.facts import collect_facts  # the agent's own code path, on this host

        facts = collect_facts()
    try:
        release = platform.freedesktop_os_release()
    except OSError:
        release = {}
    os_release = {"id": release.get("ID"), "id_like": release.get("ID_LIKE"), "version_id": release.get("VERSION_ID")}
    family = args.os or os_family(os_release)
    checkset = load_checks()
    if args.policy not in checkset.policies:
        raise UsageError(f"unknown policy {args.policy!r}; known: {', '.join(sorted(checkset.policies))}")
    print(check_report(checkset, facts, os_family=family, level=args.level, policy_id=args.policy, fmt=args.format,
                       os_release=os_release))


# --- rules ----------------------------------------------------------------------------------------

def cmd_rules_lint(args: argparse.Namespace) -> int:
    from rules.checks import checks_lint_report
    from rules.detect import lint_report

    return _reports(args, lint_report, checks_lint_report, _data_tables_report)


def _data_tables_report() -> tuple[int, str]:
    """The SLA table, the scan exposure table, the scoring model and the plan goals: validated like
    the rules (errors name the file and line)."""
    from rules.goals import GoalDataError, load_goals
    from rules.scans.assess import ExposureDataError, load_exposure
    from rules.scoring.model import ScoringModelError, load_model
    from rules.sla import SlaDataError, load_sla

    errors: list[str] = []
    loaded = {}
    for name, load, error in (("sla", load_sla, SlaDataError), ("exposure", load_exposure, ExposureDataError),
                              ("model", load_model, ScoringModelError), ("goals", load_goals, GoalDataError)):
        try:
            loaded[name] = load()
        except error as exc:
            errors.append(str(exc))
    if errors:
        return 1, "\n".join(errors)
    return 0, (f"SLA table {loaded['sla'].version} OK ({len(loaded['sla'].cells)} deadlines); "
               f"{len(loaded['exposure'])} risky services OK; scoring model {loaded['model'].version} OK "
               f"({len(loaded['model'].indicators)} indicators); {len(loaded['goals'].goals)} plan goals OK")


def cmd_rules_test(args: argparse.Namespace) -> int:
    from rules.checks import checks_test_report
    from rules.detect import test_report

    return _reports(args, test_report, checks_test_report)


def cmd_rules_import_sigma(args: argparse.Namespace) -> int:
    from collector.settings import local_rules_dir
    from rules.detect.sigma import import_sigma

    out = Path(args.output) if args.output else local_rules_dir(settings_of(args).data_dir)
    code, text = import_sigma([Path(p) for p in args.source], out)
    print(text, file=sys.stdout if code == 0 else sys.stderr)
    return code


def _detection_paths(args: argparse.Namespace) -> list[Path] | None:
    """--path, else the built-in rules plus this installation's own (imported) ones when present."""
    from collector.settings import local_rules_dir
    from rules.detect import DEFAULT_RULES_DIR

    if args.path:
        return [Path(p) for p in args.path]
    local = local_rules_dir(settings_of(args).data_dir)
    return [DEFAULT_RULES_DIR, local] if local.is_dir() else None


def _reports(args: argparse.Namespace, detections: Callable, *others: Callable) -> int:
    """Detection rules (or the --path files), then, unless --path narrows it, checks, policies and the rest."""
    runs = [detections(_detection_paths(args))]
    if not args.path:
        runs.extend(other() for other in others)
    worst = max(code for code, _ in runs)
    for code, text in runs:
        print(text, file=sys.stdout if code == 0 else sys.stderr)
    return worst
