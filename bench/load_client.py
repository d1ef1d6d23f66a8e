"""The load generator's processes: one asyncio loop (uvloop when installed) per process, agents split evenly.

One loop carries a few thousand agents; when it cannot keep up (its CPU near 100 % of a core, ticks
firing late), ``--client-procs`` spreads the agents over more processes. Every process first builds
what it sends (the event pool, the inventory template), then waits at a barrier; only then is t=0
fixed, on the wall clock, so no process starts late and the agents' phases interleave evenly.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from bench.load_agents import AgentSpec, Plan, run_agents
from bench.load_items import EventPool, Inventory
from bench.load_stats import ClientStats

READY_TIMEOUT_S = 300.0
RESULT_TIMEOUT_S = 600.0
LEAD_S = 1.0  # between fixing t=0 and t=0: time for every process to read it


def plan_for(args: argparse.Namespace, *, start_wall: float, agents: int) -> Plan:
    """The shared clock, anchored on a wall-clock start so every process agrees on t=0."""
    start = time.monotonic() + (start_wall - time.time())
    return Plan(start=start, end=start + args.duration, drain_end=start + args.duration + args.drain_s,
                wall0=start_wall, heartbeat_s=args.heartbeat_s, events_per_min=args.events_per_min,
                inventory_every_s=args.inventory_every_s, agents=agents, send_interval_s=args.send_interval_s)


def _loop_run(coro) -> Any:
    try:
        import uvloop
    except ImportError:  # the server extra brings uvloop; without it the stdlib loop does the same, slower
        return asyncio.run(coro)
    return uvloop.run(coro)


def _client_process(specs: list[AgentSpec], args: argparse.Namespace, total: int, urls: list[str],
                    ready: Any, go: Any, start_wall: Any, out: multiprocessing.Queue) -> None:
    pool, inventory = EventPool.build(), Inventory(packages=args.packages)
    ready.wait()
    go.wait()
    plan = plan_for(args, start_wall=start_wall.value, agents=total)
    connections = max(1, args.connections // args.client_procs)
    out.put(_loop_run(run_agents(specs, plan, server_urls=urls, connections=connections, pool=pool,
                                 inventory=inventory)))


def run_clients(specs: list[AgentSpec], *, args: argparse.Namespace, urls: list[str],
                on_start: Callable[[float, list[int]], None], at_window_end: Callable[[], dict]
                ) -> tuple[ClientStats, dict | None, int]:
    """Run every agent to the end of the plan; returns (stats, what ``at_window_end`` saw, client processes).

    ``on_start(t0_wall, client_pids)`` runs once t=0 is fixed; ``at_window_end`` runs in a thread when
    the measured window closes (the agents are still resending then).
    """
    probe: dict[str, Any] = {}

    def window_end_probe(start_wall: float) -> threading.Thread:
        def at_end() -> None:
            time.sleep(max(0.0, start_wall + args.duration - time.time()))
            probe["position"] = at_window_end()
        thread = threading.Thread(target=at_end, name="load-window-end", daemon=True)
        thread.start()
        return thread

    if args.client_procs == 1:
        pool, inventory = EventPool.build(), Inventory(packages=args.packages)
        start_wall = time.time() + LEAD_S
        on_start(start_wall, [])
        prober = window_end_probe(start_wall)
        stats = _loop_run(run_agents(specs, plan_for(args, start_wall=start_wall, agents=len(specs)),
                                     server_urls=urls, connections=args.connections, pool=pool, inventory=inventory))
    else:
        def started(start_wall: float, pids: list[int]) -> None:
            on_start(start_wall, pids)
            probe["thread"] = window_end_probe(start_wall)

        stats = _run_processes(specs, args=args, urls=urls, on_start=started)
        prober = probe.pop("thread")
    prober.join(timeout=RESULT_TIMEOUT_S)
    return stats, probe.get("position"), args.client_procs


def _run_processes(specs: list[AgentSpec], *, args: argparse.Namespace, urls: list[str],
                   on_start: Callable[[float, list[int]], Any]) -> ClientStats:
    ctx = multiprocessing.get_context("spawn")  # no fork: the parent holds threads and database pools
    out: multiprocessing.Queue = ctx.Queue()
    ready, go = ctx.Barrier(args.client_procs + 1), ctx.Barrier(args.client_procs + 1)
    start_wall = ctx.Value("d", 0.0)
    parts = [specs[k::args.client_procs] for k in range(args.client_procs)]
    procs = [ctx.Process(target=_client_process, args=(part, args, len(specs), urls, ready, go, start_wall, out),
                         name=f"load-client-{k}") for k, part in enumerate(parts)]
    for proc in procs:
        proc.start()
    try:
        ready.wait(timeout=READY_TIMEOUT_S)
    except threading.BrokenBarrierError:
        for proc in procs:
            proc.kill()
        raise SystemExit("a load generator process did not get ready (see its traceback above)") from None
    start_wall.value = time.time() + LEAD_S
    on_start(start_wall.value, [proc.pid for proc in procs])
    go.wait(timeout=READY_TIMEOUT_S)
    stats = ClientStats()
    deadline = start_wall.value + args.duration + args.drain_s + RESULT_TIMEOUT_S
    for _ in procs:
        try:
            stats.merge(out.get(timeout=max(1.0, deadline - time.time())))
        except queue.Empty:
            raise SystemExit("a load generator process sent no result (see its traceback above)") from None
    for proc in procs:
        proc.join(timeout=30)
    return stats
