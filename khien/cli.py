"""``khien``: the server-side command (DESIGN.md §4). One clear line on stderr for every user error."""

from __future__ import annotations

import argparse
import getpass
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from collector.db import Database
from collector.errors import KhienError
from collector.settings import Settings, load_settings
from khien.durations import parse_duration


class UsageError(Exception):
    """A mistake in how the command was called."""


def _db_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", help="data directory (default $KHIEN_DATA_DIR or ./khien-data)")
    parser.add_argument("--database-url", help="SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db "
                        "(default $KHIEN_DATABASE_URL or SQLite in the data dir)")


def _settings(args: argparse.Namespace, **extra) -> Settings:
    return load_settings(data_dir=args.data_dir, database_url=args.database_url, **extra)


def _database(args: argparse.Namespace) -> Database:
    """The database, schema upgraded: every command sees the same, current schema."""
    db = Database(_settings(args).database_url)
    db.upgrade()
    return db


# --- unit -----------------------------------------------------------------------------------------

def cmd_unit_add(args: argparse.Namespace) -> None:
    from collector.units import service as units
    from collector.units.models import UnitCreate

    try:
        data = UnitCreate(code=args.code, name=args.name, kind=args.kind, parent_code=args.parent)
    except ValueError as exc:
        raise UsageError(_first_error(exc)) from None
    with _database(args).transaction() as session:
        unit = units.create(session, data=data)
    print(f"unit {unit.code} added ({unit.kind})")


def cmd_unit_list(args: argparse.Namespace) -> None:
    from collector.scope import Scope
    from collector.units import service as units

    with _database(args).session() as session:
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
    with _database(args).transaction() as session:
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
    with _database(args).transaction() as session:
        user = users.create(session, username=args.username, password=password, role=args.role,
                            unit_code=args.unit)
    print(f"user {user.username} added ({user.role})")


def cmd_user_token(args: argparse.Namespace) -> None:
    from collector.users import service as users

    expires = _duration(args.expires)
    with _database(args).transaction() as session:
        token = users.create_api_token(session, username=args.username, expires_in=expires)
    print(token)


# --- enrollment token -----------------------------------------------------------------------------

def cmd_token_create(args: argparse.Namespace) -> None:
    from collector.agents import service as agents

    with _database(args).transaction() as session:
        token = agents.create_enrollment_token(session, unit_code=args.unit, expires_in=_duration(args.expires),
                                               max_uses=args.max_uses)
    print(f"enrollment token for unit {args.unit} (shown once; expires in {args.expires}):", file=sys.stderr)
    print(token)


# --- server and demo ------------------------------------------------------------------------------

def cmd_server(args: argparse.Namespace) -> None:
    from khien.serve import serve

    settings = _settings(args, host=args.host, port=args.port)
    serve(settings)


def cmd_demo(args: argparse.Namespace) -> None:
    from khien.demo import run_demo

    run_demo(_settings(args, host=args.host, port=args.port, demo=True), seed_only=args.seed_only)


# --- rules ----------------------------------------------------------------------------------------

def cmd_rules_lint(args: argparse.Namespace) -> int:
    from rules.detect import lint_report

    code, text = lint_report([Path(p) for p in args.path] or None)
    print(text, file=sys.stdout if code == 0 else sys.stderr)
    return code


def cmd_rules_test(args: argparse.Namespace) -> int:
    from rules.detect import test_report

    code, text = test_report([Path(p) for p in args.path] or None)
    print(text, file=sys.stdout if code == 0 else sys.stderr)
    return code


def _duration(text: str):
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _first_error(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors) and errors():
        first = errors()[0]
        return f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
    return str(exc)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="khien", description="Khiên server-side command.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, func: Callable, help_: str, parent=sub) -> argparse.ArgumentParser:
        p = parent.add_parser(name, help=help_, description=help_)
        _db_options(p)
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

    rules = sub.add_parser("rules", help="validate and test rule data").add_subparsers(dest="action", required=True)
    for name, func, help_ in (
        ("lint", cmd_rules_lint, "validate every rule file; each error names its file and line"),
        ("test", cmd_rules_test, "run every rule's inline examples; non-zero exit on any failure"),
    ):
        p = rules.add_parser(name, help=help_, description=help_)
        p.add_argument("--path", action="append", default=[], metavar="DIR_OR_FILE",
                       help="rule directory or file (repeatable; default: the built-in rules)")
        p.set_defaults(func=func)
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
