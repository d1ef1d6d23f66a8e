"""`khien scan` on loopback next to the same nmap command run directly (issue 5 benchmark).

Usage:
    .venv/bin/python -m bench.scan_overhead [--rounds 5] [--profile standard] [--only-services]

Starts loopback services (HTTP, TLS with an expired certificate, an accept-and-close port), declares
127.0.0.1 for a throwaway unit in a throwaway SQLite database, then alternates: `khien scan` as a
fresh process (argument parsing, database, nmap, XML parsing, storing, findings), and the exact nmap
command that run recorded, as a fresh process, and the same scan through ``runner.run`` inside this
process (what the server's scheduler does, without interpreter start-up). Reports median wall times
and the overheads. Goal: under 10 %. Scans 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from tests import scanhelpers

RESULTS = Path(__file__).resolve().parent / "results"


def khien(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "khien.cli", *args], env=env, capture_output=True, text=True,
                          check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile", default="standard", choices=["discovery", "standard", "full"])
    parser.add_argument("--targets", default="127.0.0.1", help="loopback address or network (default 127.0.0.1)")
    parser.add_argument("--only-services", action="store_true",
                        help="scan just the started services' ports (a short scan: the fixed cost shows most)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="khien-scan-bench-"))
    env = os.environ | {"KHIEN_DATA_DIR": str(work)}
    for cmd in (["unit", "add", "BENCH", "--name", "Bench", "--kind", "province"],
                ["unit", "ranges", "BENCH", "--add", args.targets]):
        done = khien(*cmd, env=env)
        assert done.returncode == 0, done.stderr
    khien_s: list[float] = []
    nmap_s: list[float] = []
    inproc_s: list[float] = []
    from collector.db import Database
    from collector.scans import runner
    from collector.settings import sqlite_url

    db = Database(sqlite_url(work))
    with ExitStack() as stack:
        ports = [stack.enter_context(scanhelpers.http_server()).port,
                 stack.enter_context(scanhelpers.tls_server(work / "tls")).port,
                 stack.enter_context(scanhelpers.closing_listener()).port]
        port_list = ",".join(str(p) for p in ports)
        for i in range(args.rounds):
            started = time.perf_counter()
            extra = ["--ports", port_list] if args.only_services else []
            done = khien("scan", "--unit", "BENCH", "--targets", args.targets, "--profile", args.profile, *extra,
                         "--format", "json", env=env)
            khien_s.append(time.perf_counter() - started)
            assert done.returncode == 0, done.stderr
            command = shlex.split(json.loads(done.stdout)["run"]["command"])
            out = work / f"direct-{i}.xml"
            command[command.index("-oX") + 1] = str(out)
            started = time.perf_counter()
            direct = subprocess.run(command, capture_output=True, text=True, check=False)
            nmap_s.append(time.perf_counter() - started)
            assert direct.returncode == 0, direct.stderr
            # The scheduler's case: the same scan inside a running server (no interpreter start-up).
            started = time.perf_counter()
            run = runner.run(db, unit_code="BENCH", targets=[args.targets], profile=args.profile,
                             ports=port_list if args.only_services else None, trigger="bench")
            inproc_s.append(time.perf_counter() - started)
            assert run.status == "completed", run.error
            print(f"round {i + 1}: khien scan {khien_s[-1]:.2f} s, in-process {inproc_s[-1]:.2f} s, "
                  f"nmap {nmap_s[-1]:.2f} s", flush=True)
    k, n, p = statistics.median(khien_s), statistics.median(nmap_s), statistics.median(inproc_s)
    result = {
        "profile": args.profile, "rounds": args.rounds, "targets": args.targets,
        "ports": f"the {len(ports)} started services" if args.only_services else "the profile's",
        "khien_scan_median_s": round(k, 3), "nmap_median_s": round(n, 3), "overhead_s": round(k - n, 3),
        "overhead_percent": round(100 * (k - n) / n, 1), "in_process_median_s": round(p, 3),
        "in_process_overhead_percent": round(100 * (p - n) / n, 1),
        "khien_runs": khien_s, "in_process_runs": inproc_s, "nmap_runs": nmap_s,
    }
    print(json.dumps(result, indent=2))
    RESULTS.mkdir(exist_ok=True)
    tag = args.targets.replace("/", "_")
    name = f"scan-overhead-{args.profile}-{tag}{'-services' if args.only_services else ''}.json"
    (RESULTS / name).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
