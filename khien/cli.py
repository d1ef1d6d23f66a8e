"""``khien``: the server-side command (DESIGN.md §4). One clear line on stderr for every user error."""

from __future__ import annotations

import argparse
import getpass
import logging
import sys
from collections.abc import Callable

from collector.errors import KhienError
from khien import cli_attest, cli_db, cli_findings, cli_score
from khien.cli_common import UsageError, database, db_options, duration, first_error, settings_of
from khien.cli_compliance import (
    cmd_check,
    cmd_exception_add,
    cmd_exception_list,
    cmd_exception_renew,
    cmd_exception_revoke,
    cmd_host_set,
    cmd_rules_import_sigma,
    cmd_rules_lint,
    cmd_rules_test,
)

# --- unit -----------------------------------------------------------------------------------------

def cmd_unit_add(args: argparse.Namespace) -> None:
    from collector.units import service as units
    from collector.units.models import UnitCreate

    try:
        data = UnitCreate(code=args.code, name=args.name, kind=args.kind, parent_code=args.parent)
    except ValueError as exc:
        raise UsageError(first_error(exc)) from None
    with database(args).transaction() as session:
        unit = units.create(session, data=data)
    print(f"unit {unit.code} added ({unit.kind})")


def cmd_unit_list(args: argparse.Namespace) -> None:
    from collector.scope import Scope
    from collector.units import service as units

    with database(args).session() as session:
        rows = units.list_(session, scope=Scope.everything())
        codes = units.codes_by_id(session)
    print(f"{'CODE':<20} {'KIND':<11} {'PARENT':<20} NAME")
    for u in rows:
        print(f"{u.code:<20} {u.kind:<11} {codes.get(u.parent_id, '-'):<20} {u.name}")


def cmd_unit_ports(args: argparse.Namespace) -> None:
    from collector.units import service as units

    if args.clear == (args.allow is not None):
        raise UsageError("give either --allow PORT[,PORT...] or --clear")
    ports = None
    if args.allow is not None:
        try:
            ports = [int(p) for p in args.allow.replace(" ", "").split(",") if p]
        except ValueError:
            raise UsageError(f"--allow takes comma-separated port numbers, not {args.allow!r}") from None
    with database(args).transaction() as session:
        unit = units.set_allowed_ports(session, code=args.code, ports=ports)
        shown = ",".join(map(str, unit.allowed_ports)) if unit.allowed_ports is not None else "inherited"
    print(f"unit {args.code}: allowed listening ports {shown or 'none'}")


# --- user -----------------------------------------------------------------------------------------

def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        if not sys.stdin.isatty():
            raise UsageError("no terminal to prompt for a password: use --password-stdin")
        password = getpass.getpass("Password: ")
        if getpass.getpass("Repeat password: ") != password:
            raise UsageError("passwords do not match")
    if not password:
        raise UsageError("empty password")
    return password


def cmd_user_add(args: argparse.Namespace) -> None:
    from collector.users import service as users

    password = _read_password(args)
    with database(args).transaction() as session:
        user = users.create(session, username=args.username, password=password, role=args.role,
                            unit_code=args.unit)
    print(f"user {user.username} added ({user.role})")


def cmd_user_token(args: argparse.Namespace) -> None:
    from collector.users import service as users

    expires = duration(args.expires)
    with database(args).transaction() as session:
        token = users.create_api_token(session, username=args.username, expires_in=expires)
    print(token)


# --- enrollment token -----------------------------------------------------------------------------

def cmd_token_create(args: argparse.Namespace) -> None:
    from collector.agents import service as agents

    with database(args).transaction() as session:
        token = agents.create_enrollment_token(session, unit_code=args.unit, expires_in=duration(args.expires),
                                               max_uses=args.max_uses)
    print(f"enrollment token for unit {args.unit} (shown once; expires in {args.expires}):", file=sys.stderr)
    print(token)


# --- server and demo ------------------------------------------------------------------------------

def cmd_server(args: argparse.Namespace) -> None:
    from khien.serve import serve

    settings = settings_of(args, host=args.host, port=args.port)
    serve(settings)


def cmd_demo(args: argparse.Namespace) -> None:
    from khien.demo import run_demo

    run_demo(settings_of(args, host=args.host, port=args.port, demo=True), seed_only=args.seed_only)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="khien", description="Khiên server-side command.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, func: Callable, help_: str, parent=sub) -> argparse.ArgumentParser:
        p = parent.add_parser(name, help=help_, description=help_)
        db_options(p)
        p.set_defaults(func=func)
        return p

    p = command("server", cmd_server, "run collector, console and scheduler in one process")
    p.add_argument("--host", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default 8000)")
    p = command("demo", cmd_demo, "the whole system on this machine: server plus a local agent")
    p.add_argument("--host", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default 8000)")
    p.add_argument("--seed-only", action="store_true", help="seed the database and exit")

    unit = sub.add_parser("unit", help="manage units").add_subparsers(dest="action", required=True)
    p = command("add", cmd_unit_add, "add a unit", unit)
    p.add_argument("code")
    p.add_argument("--name", required=True)
    p.add_argument("--kind", required=True, choices=["department", "commune", "district", "province"])
    p.add_argument("--parent", help="code of the parent unit")
    command("list", cmd_unit_list, "list units", unit)
    p = command("ports", cmd_unit_ports, "set the listening ports a unit's hosts may open (others alert)", unit)
    p.add_argument("code")
    p.add_argument("--allow", metavar="PORT[,PORT...]", help="e.g. 22,80,443 (an empty string allows none)")
    p.add_argument("--clear", action="store_true", help="inherit the parent unit's list again")
    cli_findings.register(sub, command, unit)
    cli_attest.register(sub, command)
    cli_score.register(sub, command)
    cli_db.register(sub, command)

    user = sub.add_parser("user", help="manage console users").add_subparsers(dest="action", required=True)
    p = command("add", cmd_user_add, "add a user (password from prompt or --password-stdin)", user)
    p.add_argument("username")
    p.add_argument("--role", required=True, choices=["admin", "analyst", "unit_officer", "auditor"])
    p.add_argument("--unit", help="unit code (required for unit_officer)")
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    p = command("token", cmd_user_token, "print a personal API token (Bearer) for the JSON API", user)
    p.add_argument("username")
    p.add_argument("--expires", default="90d", help="lifetime, e.g. 90d (default 90d)")

    token = sub.add_parser("token", help="agent enrollment tokens").add_subparsers(dest="action", required=True)
    p = command("create", cmd_token_create, "print a new enrollment token for a unit", token)
    p.add_argument("--unit", required=True, help="unit code")
    p.add_argument("--expires", default="7d", help="lifetime, e.g. 7d (default 7d)")
    p.add_argument("--max-uses", type=int, help="how many agents may enroll with it (default unlimited)")

    host = sub.add_parser("host", help="classify hosts").add_subparsers(dest="action", required=True)
    p = command("set", cmd_host_set, "declare a host's security level (1-5) and exposure", host)
    p.add_argument("host_id", type=int)
    p.add_argument("--level", type=int, choices=range(1, 6), metavar="1-5")
    p.add_argument("--internet-facing", choices=["yes", "no"])

    exc = sub.add_parser("exception", help="risk acceptance (exceptions)").add_subparsers(dest="action",
                                                                                         required=True)
    p = command("add", cmd_exception_add, "accept a failed check or a finding, approved, until it expires", exc)
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--check", help="check id")
    target.add_argument("--finding", help="finding key")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--host", type=int, help="host id")
    where.add_argument("--unit", help="unit code (covers its sub-units)")
    p.add_argument("--justification", required=True)
    p.add_argument("--compensating", required=True, help="the compensating control in place")
    p.add_argument("--approver", required=True, help="username of the approving administrator")
    p.add_argument("--requested-by", help="who asked for it")
    p.add_argument("--expires", default="90d", help="lifetime, at most 90d (default 90d)")
    p = command("list", cmd_exception_list, "list exceptions", exc)
    p.add_argument("--status", choices=["active", "expired", "revoked"])
    p = command("renew", cmd_exception_renew, "extend an exception once", exc)
    p.add_argument("id", type=int)
    p.add_argument("--approver", required=True)
    p.add_argument("--expires", default="90d")
    p = command("revoke", cmd_exception_revoke, "end an exception now", exc)
    p.add_argument("id", type=int)
    p.add_argument("--by", required=True, help="username of the administrator revoking it")
    p.add_argument("--reason", required=True)

    p = sub.add_parser("check", help="evaluate the compliance checks on this host (or on a facts file)",
                       description="Evaluate the compliance checks on this host, or on facts saved by "
                                   "'khien-agent facts', and print each result and the policy score.")
    p.add_argument("--facts", metavar="FILE|-", help="facts JSON instead of collecting them here")
    p.add_argument("--level", type=int, choices=range(1, 6), metavar="1-5",
                   help="security level to judge at (default 3)")
    p.add_argument("--policy", default="tcvn_11930_2017_server", help="policy id (default tcvn_11930_2017_server)")
    p.add_argument("--os", choices=["debian", "rhel"], help="os family (default: from /etc/os-release)")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.set_defaults(func=cmd_check)

    rules = sub.add_parser("rules", help="validate and test rule data").add_subparsers(dest="action", required=True)
    for name, func, help_ in (
        ("lint", cmd_rules_lint, "validate every detection rule, check and policy; errors name file and line"),
        ("test", cmd_rules_test, "run every rule's and check's inline examples; non-zero exit on any failure"),
    ):
        p = rules.add_parser(name, help=help_, description=help_)
        db_options(p)  # for --data-dir: the installation's own rules live there
        p.add_argument("--path", action="append", default=[], metavar="DIR_OR_FILE",
                       help="detection rule directory or file (repeatable); default: all built-in rule data "
                            "and the data dir's rules/detections")
        p.set_defaults(func=func)
    p = rules.add_parser("import-sigma", help="convert Sigma rules for the Linux auth logs into Khiên rules",
                         description="Convert the Sigma rules Khiên can evaluate (Linux auth/sshd/sudo/syslog "
                                     "keyword and field rules) into Khiên rules; report every skipped rule and why.")
    db_options(p)
    p.add_argument("source", nargs="+", metavar="DIR_OR_FILE", help="Sigma rule files or directories")
    p.add_argument("--output", metavar="DIR", help="where to write the rules (default: <data dir>/rules/detections, "
                                                   "which the server loads at start)")
    p.set_defaults(func=cmd_rules_import_sigma)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Long-running commands log progress; one-shot commands print only their result or one error line.
    verbose = args.command in ("server", "demo")
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        code = args.func(args)
    except (KhienError, UsageError) as exc:
        print(f"khien: error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, UsageError) else 1
    except KeyboardInterrupt:
        return 130
    return code or 0


if __name__ == "__main__":
    raise SystemExit(main())
