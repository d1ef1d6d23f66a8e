"""``khien-agent`` command line: enroll, run, inventory, facts, parse-log, status.

Exit codes: 0 success, 1 error (one line on stderr, no traceback), 2 usage error, 3 ``run --once``
left data in the spool, 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sqlite3
import sys
from typing import Any

from agent import __version__
from agent.config import AgentError, Config, load_config

EXIT_ERROR = 1
EXIT_SPOOLED = 3
EXIT_INTERRUPTED = 130


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``khien-agent`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except AgentError as exc:
        return fail(str(exc))
    except sqlite3.Error as exc:
        return fail(f"spool database error: {exc}")
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # stdout closed early (``| head``): not worth a traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def fail(message: str, code: int = EXIT_ERROR) -> int:
    """Print one error line on stderr and return ``code``."""
    print(f"khien-agent: error: {message}", file=sys.stderr)
    return code


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every sub-command."""
    parser = argparse.ArgumentParser(prog="khien-agent", description="Khiên host agent.",
                                     epilog="Exit codes: 0 ok, 1 error, 2 usage, 3 data left spooled.")
    parser.add_argument("--version", action="version", version=f"khien-agent {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    enroll = commands.add_parser("enroll", help="enroll this host with a server using a token",
                                 description="Exchange an enrollment token for this agent's credentials.")
    enroll.add_argument("--server", help="server URL, e.g. https://khien.example.gov.vn "
                        "(default: [server] url from the config)")
    enroll.add_argument("--token", required=True, help="enrollment token ('-' reads it from stdin)")
    enroll.add_argument("--ca-file", help="PEM file of the CA that signed the server's certificate")
    _common(enroll)
    enroll.set_defaults(handler=cmd_enroll)

    run = commands.add_parser("run", help="collect and send (until stopped, or once)",
                              description="Run the collectors and send their data to the server.")
    run.add_argument("--once", action="store_true",
                     help="run every collector once, send, exit (3 if data is left spooled)")
    run.add_argument("-v", "--verbose", action="store_true", help="log progress (INFO) to stderr")
    _common(run)
    run.set_defaults(handler=cmd_run)

    inventory = commands.add_parser("inventory", help="print this host's inventory as JSON",
                                    description="Print this host's inventory as JSON (no server needed).")
    inventory.set_defaults(handler=cmd_inventory)

    facts = commands.add_parser("facts", help="print this host's compliance facts as JSON",
                                description="Collect the compliance facts (sshd, PAM, accounts, firewall, audit, "
                                            "...) and print them as JSON (no server needed).")
    facts.add_argument("--kind", metavar="NAME", help="print only this fact kind (one of: %(choices)s)",
                       choices=_fact_kinds())
    facts.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS",
                       help="seconds one command may take (default: 10)")
    facts.set_defaults(handler=cmd_facts)

    parse_log = commands.add_parser(
        "parse-log", help="print normalized auth events from a log file as JSON lines",
        description="Parse an auth log, syslog file or 'journalctl -o json' output and print one JSON object "
                    "per recognised line; unrecognised lines print nothing.")
    parse_log.add_argument("--source", choices=("auth", "syslog", "journal"), default="auth",
                           help="input format: auth/syslog text lines, or journalctl -o json (default: auth)")
    parse_log.add_argument("file", metavar="FILE", help="the log file, or '-' for stdin")
    parse_log.add_argument("-v", "--verbose", action="store_true", help="print line counts to stderr at the end")
    parse_log.set_defaults(handler=cmd_parse_log)

    status = commands.add_parser("status", help="show enrollment, last send, spool and module health",
                                 description="Show what the agent last reported (works while it is stopped).")
    status.add_argument("--json", action="store_true", help="print the status as JSON")
    _common(status)
    status.set_defaults(handler=cmd_status)
    return parser


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--state-dir", help="state directory (default: /var/lib/khien-agent as root, "
                        "~/.local/state/khien-agent otherwise)")
    parser.add_argument("--config", help="TOML config file (default: /etc/khien/agent.toml if it exists)")


def _config(args: argparse.Namespace) -> Config:
    return load_config(args.config, state_dir=args.state_dir)


def _setup_logging(level: str) -> None:
    logging.basicConfig(stream=sys.stderr, level=level,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%Y-%m-%dT%H:%M:%S")


def cmd_enroll(args: argparse.Namespace) -> int:
    """Enroll and store the credentials."""
    from agent.collectors.base import current_platform
    from agent.collectors.inventory import collect_identity
    from agent.sender import Transport, enroll
    from agent.state import save_credentials

    config = _config(args)
    server = args.server or config.server.url
    if not server:
        return fail("no server URL: pass --server URL or set [server] url in the config")
    token = sys.stdin.readline().strip() if args.token == "-" else args.token.strip()
    if not token:
        return fail("empty enrollment token")
    transport = Transport(server, ca_file=args.ca_file or config.server.ca_file,
                          timeout_s=config.sender.timeout_s,
                          allow_insecure_http=config.server.allow_insecure_http)
    credentials = enroll(transport, token=token, identity=collect_identity(),
                         agent_version=__version__, platform=current_platform())
    path = save_credentials(config.state_dir, credentials)
    unit = f", unit {credentials.unit}" if credentials.unit else ""
    print(f"enrolled as agent {credentials.agent_id} with {credentials.server}{unit}; credentials in {path}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """Run the agent, forever or once."""
    from agent.runner import Agent
    from agent.state import load_credentials

    config = _config(args)
    credentials = load_credentials(config.state_dir)
    # One-shot runs stay quiet unless asked: the outcome is the single line printed at the end.
    _setup_logging("INFO" if args.verbose else ("ERROR" if args.once else config.agent.log_level))
    with Agent(config, credentials) as agent:
        if not args.once:
            agent.run_forever()
            return 0
        result = agent.run_once()
        stats = agent.spool.stats()
    if result.ok:
        print(f"sent {result.items} items in {result.batches} batches"
              + (f"; {result.dead_lettered} dead-lettered" if result.dead_lettered else ""))
        return 0
    return fail(f"{stats['items']} items remain spooled: {result.error or result.outcome}", EXIT_SPOOLED)


def cmd_inventory(args: argparse.Namespace) -> int:
    """Print the inventory sections as JSON."""
    from agent.collectors.inventory import collect_sections

    json.dump(collect_sections(), sys.stdout, indent=2, ensure_ascii=False, default=str)
    sys.stdout.write("\n")
    return 0


def _fact_kinds() -> tuple[str, ...]:
    from agent.collectors.facts.kinds import KIND_NAMES

    return KIND_NAMES


def cmd_facts(args: argparse.Namespace) -> int:
    """Print the facts snapshot (or one kind) as JSON."""
    from agent.collectors.facts import collect_facts

    if args.timeout <= 0:
        return fail("--timeout must be greater than 0")
    kinds = [args.kind] if args.kind else None
    facts = collect_facts(kinds=kinds, timeout_s=args.timeout)
    json.dump(facts["kinds"][args.kind] if args.kind else facts, sys.stdout, indent=2, ensure_ascii=False,
              default=str)
    sys.stdout.write("\n")
    return 0


def cmd_parse_log(args: argparse.Namespace) -> int:
    """Print the auth events found in a log as JSON lines."""
    from agent.collectors.authlog import LineParser
    from agent.collectors.authlog.logfile import parse_stream, write_json_lines

    parser = LineParser("journal" if args.source == "journal" else "file")
    try:
        stream = sys.stdin.buffer if args.file == "-" else open(args.file, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        return fail(f"cannot read {args.file}: {exc.strerror or exc}")
    try:
        written = write_json_lines(parse_stream(stream, args.source, parser), sys.stdout)
    except OSError as exc:
        if isinstance(exc, BrokenPipeError):
            raise
        return fail(f"cannot read {args.file}: {exc.strerror or exc}")
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
    sys.stdout.flush()
    if args.verbose:
        ignored = ", ".join(f"{k}={v}" for k, v in sorted(parser.ignored.items())) or "none"
        print(f"events: {written}, recognised lines: {parser.recognised}, ignored: {ignored}", file=sys.stderr)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """Report from the state directory, without needing the agent to run."""
    from agent.state import collect_status

    report = collect_status(_config(args).state_dir)
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False, default=str))
    else:
        print(format_status(report))
    if not report["enrolled"]:
        return fail(f"not enrolled (no credentials in {report['state_dir']}); "
                    "run 'khien-agent enroll --server URL --token TOKEN'")
    return 0


def format_status(report: dict[str, Any]) -> str:
    """The status report as aligned human-readable lines."""
    lines = [("State dir", report["state_dir"])]
    creds = report.get("credentials")
    if creds:
        unit = f", unit {creds['unit']}" if creds.get("unit") else ""
        lines.append(("Enrolled", f"yes: agent {creds['agent_id']} at {creds['server']}{unit} "
                                  f"(since {creds.get('enrolled_at') or '?'})"))
    else:
        lines.append(("Enrolled", "no"))
    status = report.get("status") or {}
    lines.append(("Agent", report["agent_state"]))
    if status.get("credential_rejected"):
        lines.append(("Credential", "REJECTED by the server: re-enroll"))
    result = status.get("last_send_result") or "never"
    lines.append(("Last send", f"{status.get('last_send_at') or 'never'} ({result})"))
    lines.append(("Last success", status.get("last_success_at") or "never"))
    lines.append(("Last error", status.get("last_error") or "none"))
    spool = report.get("spool") or {}
    lines.append(("Spool", f"{spool.get('items', 0)} items, {_size(spool.get('bytes', 0))}, "
                           f"{spool.get('pending_batches', 0)} batch(es) awaiting ack"))
    dropped = spool.get("dropped") or {}
    lines.append(("Dropped", ", ".join(f"{k}={v}" for k, v in sorted(dropped.items())) or "none"))
    dead = spool.get("dead_letter_reasons") or {}
    lines.append(("Dead letters", f"{spool.get('dead_letters', 0)}"
                  + (f" ({', '.join(f'{k}={v}' for k, v in sorted(dead.items()))})" if dead else "")))
    budget = status.get("budget")
    if budget:
        used = (f"RSS {_size(budget['rss_bytes'] or 0)} of {budget['max_rss_bytes'] / 1e6:.0f} MB, CPU "
                f"{budget['cpu_percent'] or 0:.1f}% of {budget['max_cpu_percent']:g}%")
        paused = f"; paused: {', '.join(budget['paused'])}" if budget.get("paused") else ""
        lines.append(("Budget", f"{'OVER' if budget.get('over') else 'ok'} ({used}; overruns "
                                f"{budget.get('overruns', 0)}{paused})"))
    for name, health in sorted((status.get("collectors") or {}).items()):
        error = f", last error: {health['last_error']}" if health.get("last_error") else ""
        counters = health.get("counters") or {}
        if counters:
            error += "; " + ", ".join(f"{k}={v}" for k, v in sorted(counters.items()))
        lines.append((f"Module {name}", f"{health.get('status')} (runs {health.get('runs', 0)}, "
                                        f"errors {health.get('errors', 0)}{error})"))
    width = max(len(label) for label, _ in lines) + 1
    return "\n".join(f"{label + ':':<{width}} {value}" for label, value in lines)


def _size(count: int) -> str:
    for unit in ("B", "KiB", "MiB"):
        if count < 1024 or unit == "MiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count} B"
