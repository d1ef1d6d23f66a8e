"""Detection throughput: built-in rules on a realistic auth-log mix, next to fail2ban-regex (issue 4).

Usage:
    .venv/bin/python -m bench.detect [--lines 200000] [--seed 7]

Generates an auth log where a few attacker addresses brute-force among ordinary traffic (logins,
sudo, cron, systemd, pre-auth noise), then measures on one core:
  - the engine alone: parsed events through every built-in rule (events/s),
  - Khiên end to end: parse every line with the agent's parser and evaluate it (lines/s),
  - fail2ban-regex with its stock sshd filter on the same file (lines/s; needs `apt-get install
    fail2ban` — install with a policy-rc.d that exits 101 so its daemon is not started).
and prints the ratio. fail2ban-regex only matches lines against the filter; Khiên also normalises
every event and correlates (thresholds, sequences, dedupe), so the comparison favours fail2ban.
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from agent.collectors.authlog import LineParser
from agent.collectors.authlog.logfile import parse_stream
from bench.parse_log import BAD, TEMPLATES, USERS
from rules.detect import Engine, EngineEvent, load_rules

ATTACKERS = [f"203.0.113.{n}" for n in range(1, 21)] + [f"2001:db8:bad::{n:x}" for n in range(1, 6)]
OFFICE = [f"198.51.100.{n}" for n in range(1, 41)]
FAIL2BAN_FILTER = Path("/etc/fail2ban/filter.d/sshd.conf")


def generate(path: Path, lines: int, seed: int) -> None:
    """Ordinary auth-log traffic, with a third of the lines from 25 brute-forcing addresses."""
    rng = random.Random(seed)
    weights = [w for w, _ in TEMPLATES]
    picks = rng.choices([t for _, t in TEMPLATES], weights, k=lines)
    start = datetime(2026, 11, 22, tzinfo=UTC)
    with open(path, "w") as out:
        for n, template in enumerate(picks):
            attacking = "Failed" in template or "Invalid" in template or "authentication failure" in template
            ip = rng.choice(ATTACKERS) if attacking and rng.random() < 0.7 else rng.choice(OFFICE)
            ts = (start + timedelta(seconds=n * 0.4)).strftime("%b %d %H:%M:%S")
            out.write(f"{ts} web01 " + template.format(pid=1000 + n % 50000, user=rng.choice(USERS),
                                                       bad=rng.choice(BAD), ip=ip, port=rng.randrange(1024, 65536),
                                                       tty=rng.randrange(10)) + "\n")


def parse(path: Path) -> list:
    with open(path, "rb") as fh:
        return list(parse_stream(fh, "auth", LineParser()))


def to_engine(events: list) -> list[EngineEvent]:
    base = datetime(2026, 11, 22, tzinfo=UTC)
    return [EngineEvent(type=e.type, ts=base + timedelta(seconds=n * 0.4), host="1", data=e.data, id=n)
            for n, e in enumerate(events)]


def run_engine(engine_events: list[EngineEvent]) -> tuple[float, int]:
    engine = Engine(load_rules())
    start = time.process_time()
    found = sum(len(engine.process(e)) for e in engine_events)
    return time.process_time() - start, found


def end_to_end(path: Path) -> tuple[float, int]:
    rules = load_rules()
    start = time.process_time()
    events = to_engine(parse(path))
    engine = Engine(rules)
    found = sum(len(engine.process(e)) for e in events)
    return time.process_time() - start, found


def fail2ban(path: Path) -> tuple[float, str] | None:
    if shutil.which("fail2ban-regex") is None or not FAIL2BAN_FILTER.exists():
        return None
    start = time.perf_counter()
    done = subprocess.run(["fail2ban-regex", "--print-no-missed", str(path), str(FAIL2BAN_FILTER)],
                          capture_output=True, text=True, check=True)
    wall = time.perf_counter() - start
    summary = next((line.strip() for line in done.stdout.splitlines() if line.startswith("Lines:")), "")
    return wall, summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp, "auth.log")
        generate(log, args.lines, args.seed)
        events = to_engine(parse(log))
        engine_s, detections = run_engine(events)
        khien_s, _ = end_to_end(log)
        print(f"{args.lines:,} lines -> {len(events):,} events; {len(load_rules().rules)} rules; "
              f"{detections:,} detections")
        print(f"engine only:        {len(events) / engine_s:,.0f} events/s (CPU {engine_s:.2f}s)")
        print(f"Khiên parse+detect: {args.lines / khien_s:,.0f} lines/s (CPU {khien_s:.2f}s)")
        f2b = fail2ban(log)
        if f2b is None:
            print("fail2ban-regex: not installed (apt-get install fail2ban)")
            return 0
        wall, summary = f2b
        print(f"fail2ban-regex:     {args.lines / wall:,.0f} lines/s (wall {wall:.2f}s) [{summary}]")
        print(f"ratio Khiên / fail2ban: {(args.lines / khien_s) / (args.lines / wall):.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
