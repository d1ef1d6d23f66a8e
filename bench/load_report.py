"""The load run as a verdict against the goal, a two-column table per run and one table per matrix."""

from __future__ import annotations

import argparse
from typing import Any

from bench.common import print_rows
from bench.load_stats import LATE_TICK_WARN_MS

GOAL_P99_MS = 500.0
CLIENT_SATURATED_PCT = 90.0  # of one core, per client process


def client_saturated(result: dict[str, Any]) -> bool:
    """The generator, not the server, may be what limits the figures."""
    per_proc = (result["usage"]["client"]["cpu_avg_pct"] or 0.0) / max(1, result.get("client_procs", 1))
    late = result["run"]["tick_lag_p99_ms"] or 0.0
    return per_proc >= CLIENT_SATURATED_PCT or late >= LATE_TICK_WARN_MS


def verdict(result: dict[str, Any]) -> str:
    run = result["run"]
    if not result["check"]["ok"]:
        return "FAIL: stored counts differ from acknowledged ones"
    if run["errors"]:
        return f"FAIL: {run['errors']} errors"
    if run["p99_ms"] is None or run["p99_ms"] >= GOAL_P99_MS:
        return f"FAIL: p99 {run['p99_ms']} ms >= {GOAL_P99_MS:g} ms"
    return "ok (client saturated: figures are a lower bound)" if client_saturated(result) else "ok"


def _usage(u: dict[str, Any]) -> str:
    if u.get("cpu_avg_pct") is None:
        return "-"
    return f"CPU avg {u['cpu_avg_pct']:.0f} % peak {u['cpu_peak_pct']:.0f} %, RSS peak {u['rss_peak_mb']:.0f} MB"


def print_run(result: dict[str, Any], args: argparse.Namespace) -> None:
    run, det, check, prep = result["run"], result["detection"], result["check"], result["prepare"]
    lag = "; ".join(f"{k}: lag {v['lag_s']} s" for k, v in det.items() if k.startswith("server-"))
    rows: list[tuple[str, object]] = [
        ("agents / servers / backend", f"{result['agents']:,} / {result['servers']}"
                                       f"{' + a leader without agents' if result.get('leader_process') else ''}"
                                       f" / {result['backend']}"),
        ("mix", f"heartbeat {args.heartbeat_s:g} s, {args.events_per_min:g} events/agent/min, "
                f"package change every {args.inventory_every_s:g} s, sent every {args.send_interval_s:g} s"),
        ("enrolled now", f"{prep.get('enrolled_now', 0):,}" + (f" in {prep['enroll_s']} s ({prep['enroll_per_s']}/s)"
                                                               if prep.get("enroll_s") is not None else "")),
        ("first full inventories", f"{prep.get('first_inventories', 0):,}" + (
            f" in {prep['first_inventory_s']} s" if prep.get("first_inventory_s") is not None else "")),
        ("items/s acknowledged", run["items_per_s"]),
        ("requests/s", run["requests_per_s"]),
        ("latency p50 / p95 / p99 / max", f"{run['p50_ms']} / {run['p95_ms']} / {run['p99_ms']} / {run['max_ms']} ms"),
        ("p99 per 5 s of the window", ", ".join(f"{b['p99_ms']:.0f}" for b in run["timeline"]) + " ms"),
        ("server time per batch (mean)", f"{result.get('server_batch_ms')} ms (handler start to answer, "
                                         "ingest-queue wait included)"),
        ("errors", f"{run['errors']} of {run['requests']:,} ({100 * run['error_rate']:.3f} %) "
                   f"status {run['by_status']} exceptions {run['by_exception'] or '{}'}"),
        ("backoffs / duplicates", f"{run['backoffs']} / {run['duplicates']}"),
        ("servers", _usage(result["usage"]["servers"])),
        *((name, _usage(u)) for name, u in result["usage"].items() if name.startswith("server-")),
    ]
    if "database" in result["usage"]:
        rows.append(("PostgreSQL backends", _usage(result["usage"]["database"])))
    rows += [
        ("load generator", f"{_usage(result['usage']['client'])} over {result.get('client_procs', 1)} process(es); "
                           f"tick lag p99 {run['tick_lag_p99_ms']} ms"),
        ("detection at window end", f"backlog {det.get('backlog_events')} events; {lag}; "
                                    f"caught up after {det.get('catch_up_s')} s"),
        ("stored exactly once", f"{'yes' if check['ok'] else 'NO'} (undelivered {check['undelivered']}, "
                                f"mismatched {check['mismatched'] or 'none'})"),
        ("machine load (1-min avg)", f"{result['machine_load']['before']} before, {result['machine_load']['after']} "
                                     f"after, on {result['machine_load']['cpus']} CPUs"),
        ("verdict", result["verdict"]),
    ]
    print()
    print_rows(rows)
    if client_saturated(result):
        print("WARNING: the load generator was saturated (CPU near a core per process, or its send ticks firing "
              f"late, p99 >= {LATE_TICK_WARN_MS:g} ms): its own delay is in these figures, which may be the client's "
              "limit rather than the server's. Try --client-procs 2, or a quieter machine.")
    if result["backend"] == "sqlite" and result["servers"] > 1:
        print("NOTE: two processes on one SQLite file take turns on its single write lock (waiting in SQLite's busy "
              "handler): this shows ingest stays correct across processes, not that SQLite scales out.")


def matrix_table(runs: list[dict[str, Any]]) -> str:
    head = ("agents", "items/s", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors", "server CPU avg/peak %",
            "server RSS MB", "db CPU avg %", "client CPU avg %", "det. backlog", "verdict")
    lines = [head]
    for r in runs:
        run, u = r["run"], r["usage"]
        db_cpu = u.get("database", {}).get("cpu_avg_pct")
        lines.append((f"{r['agents']:,}", f"{run['items_per_s']:,.0f}", f"{run['requests_per_s']:,.0f}",
                      str(run["p50_ms"]), str(run["p95_ms"]), str(run["p99_ms"]), str(run["errors"]),
                      f"{u['servers']['cpu_avg_pct']}/{u['servers']['cpu_peak_pct']}",
                      str(u["servers"]["rss_peak_mb"]), "-" if db_cpu is None else str(db_cpu),
                      str(u["client"]["cpu_avg_pct"]), str(r["detection"].get("backlog_events")), r["verdict"]))
    widths = [max(len(row[i]) for row in lines) for i in range(len(head))]
    return "\n".join("  ".join(cell.rjust(w) if i < len(head) - 1 else cell for i, (cell, w) in
                               enumerate(zip(row, widths, strict=True))) for row in lines)
