"""Simulated agents on one asyncio loop, each behaving like agent/runner.py + agent/sender.py.

Per agent: a spool of JSON item texts; every send interval (the real agent's 5 s tick by default) it
drains the spool in batches of at most ``BATCH_MAX_ITEMS`` items / ``BATCH_MAX_BYTES`` bytes, each
batch gzip-encoded by the agent's own ``PendingBatch.encode`` and resent under the same id until
acknowledged. 202 acknowledges; 429, 5xx and network errors back off with the agent's ``Backoff``
(Retry-After wins); 401/403 stop the agent; 413/422/other 4xx dead-letter the batch, counted.

The agents run in steady state from t=0: heartbeat phases are spread evenly over the heartbeat
interval and send-tick phases over the send interval (so no thundering herd), events arrive as a
Poisson process at the configured rate, package deltas likewise at the inventory rate.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from dataclasses import dataclass
from typing import Any

from agent import __version__ as AGENT_VERSION
from agent.sender import BATCHES_PATH, RETRYABLE_4XX, Backoff
from agent.spool import PendingBatch
from agent.transport import parse_retry_after
from bench.load_http import Pool, TransportError, new_pool
from bench.load_items import ATTACKED_SHARE, ATTACKERS, EventPool, Inventory, heartbeat, inventory_clock, now_iso
from bench.load_stats import ClientStats

BATCH_MAX_ITEMS = 500  # agent/config.py defaults
BATCH_MAX_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class AgentSpec:
    index: int
    agent_id: str
    secret: str
    server: int  # which server process this agent talks to (the proxy's choice)
    identity: dict[str, Any]
    extras: tuple[int, ...] = ()


@dataclass
class Plan:
    """The run's clock and mix, shared by every agent of a process."""

    start: float  # time.monotonic() of t=0
    end: float  # end of the measured window
    drain_end: float  # last moment to resend what was not acknowledged
    wall0: float  # time.time() at ``start``
    heartbeat_s: float
    events_per_min: float
    inventory_every_s: float
    agents: int  # in the whole run, to spread phases evenly
    # agent.config SenderSection.interval_s (KHIEN_AGENT_SEND_S) unless a run asks what a longer tick would do
    send_interval_s: float

    def wall(self, t: float) -> float:
        return self.wall0 + (t - self.start)


class SimAgent:
    def __init__(self, spec: AgentSpec, plan: Plan, *, pool: EventPool, inventory: Inventory,
                 client: Pool, stats: ClientStats) -> None:
        self.spec, self.plan, self.pool, self.inventory = spec, plan, pool, inventory
        self.client, self.stats = client, stats
        self.rng = random.Random(spec.index)
        self.headers = {"Authorization": f"Bearer {spec.agent_id}.{spec.secret}", "Content-Type": "application/json",
                        "Content-Encoding": "gzip", "Accept": "application/json",
                        "User-Agent": f"khien-agent/{AGENT_VERSION}"}
        self.spool: list[tuple[str, str, str | None]] = []  # (type, JSON text, derived event type)
        self.pending: tuple[PendingBatch, bytes, list[tuple[str, str, str | None]]] | None = None
        self.backoff = Backoff(1.0, 300.0, rng=self.rng)
        self.rejected = False
        self.extras = set(spec.extras)
        self.campaign = self.rng.choice(ATTACKERS) if self.rng.random() < ATTACKED_SHARE else None
        self.sent_items = 0
        phase = (spec.index + 0.5) / plan.agents
        self.send_phase = phase * plan.send_interval_s
        self.next_heartbeat = plan.start + phase * plan.heartbeat_s
        rate = plan.events_per_min / 60.0
        self.event_rate = rate
        self.next_event = plan.start + self.rng.expovariate(rate) if rate > 0 else float("inf")
        inv_rate = 1.0 / plan.inventory_every_s if plan.inventory_every_s > 0 else 0.0
        self.inventory_rate = inv_rate
        self.inventory_rng = inventory_clock(spec.index)
        self.next_inventory = plan.start + self.inventory_rng.expovariate(inv_rate) if inv_rate > 0 else float("inf")

    # --- collecting --------------------------------------------------------------------------------

    def _spool(self, type_: str, at: float, data: dict[str, Any], derived: str | None = None) -> None:
        text = json.dumps({"type": type_, "ts": now_iso(self.plan.wall(at)), "data": data},
                          separators=(",", ":"), ensure_ascii=False)
        self.spool.append((type_, text, derived))

    def collect(self, now: float) -> None:
        """Everything the modules produced since the last tick, in time order per module."""
        plan = self.plan
        while self.next_heartbeat <= now:
            self._spool("host.heartbeat", self.next_heartbeat, heartbeat(
                uptime_s=3600 + self.next_heartbeat - plan.start, spool_items=len(self.spool),
                items_sent=self.sent_items, rng=self.rng))
            self.next_heartbeat += plan.heartbeat_s
        while self.next_event <= now:
            type_, data = self.pool.pick(self.rng, self.campaign)
            self._spool(type_, self.next_event, data)
            self.next_event += self.rng.expovariate(self.event_rate)
        while self.next_inventory <= now:
            data, derived = self.inventory.delta(self.extras, self.inventory_rng)
            self._spool("inventory.snapshot", self.next_inventory, data, derived)
            self.next_inventory += self.inventory_rng.expovariate(self.inventory_rate)

    # --- sending -----------------------------------------------------------------------------------

    def _next_batch(self) -> tuple[PendingBatch, bytes, list[tuple[str, str, str | None]]] | None:
        if self.pending is not None:
            return self.pending
        if not self.spool:
            return None
        chosen, size = [], 0
        for entry in self.spool[:BATCH_MAX_ITEMS]:
            if chosen and size + len(entry[1]) > BATCH_MAX_BYTES:
                break
            chosen.append(entry)
            size += len(entry[1])
        del self.spool[:len(chosen)]
        batch = PendingBatch(str(uuid.uuid4()), now_iso(time.time()), [text for _, text, _ in chosen])
        self.pending = (batch, batch.encode(), chosen)
        return self.pending

    async def drain(self) -> None:
        """Send until the spool is empty or a failure says back off (agent/sender.py ``_drain``)."""
        while not self.rejected and (pending := self._next_batch()) is not None:
            if not await self._send(*pending):
                return

    async def _send(self, batch: PendingBatch, body: bytes, entries: list[tuple[str, str, str | None]]) -> bool:
        plan, stats = self.plan, self.stats
        started = time.monotonic()
        in_window = started < plan.end
        try:
            answer = await self.client.post(BATCHES_PATH, body=body, headers=self.headers)
        except TransportError as exc:
            stats.record_exception(name=exc.name, latency_ms=(time.monotonic() - started) * 1000,
                                   at_s=started - plan.start, in_window=in_window)
            return self._back_off(None)
        done = time.monotonic()
        status = answer.status
        # Items/s counts answers from one send interval on: by then every agent's answers carry a whole
        # interval of items, so the figure has no start-up deficit.
        counted = plan.start + plan.send_interval_s <= done < plan.end
        stats.record_answer(status=status, latency_ms=(done - started) * 1000, at_s=started - plan.start,
                            in_window=in_window, answered_in_window=counted, items=len(entries))
        if 200 <= status < 300:
            self.pending = None
            self.backoff.reset()
            if _is_duplicate(answer.body):
                stats.duplicates += 1
            else:
                stats.batches += 1
                stats.accepted_by_type.update(type_ for type_, _, _ in entries)
                stats.derived_expected.update(derived for _, _, derived in entries if derived)
                self.sent_items += len(entries)
            return True
        if status in (401, 403):
            self.rejected = True
            stats.rejected_agents += 1
            return False
        if status >= 500 or status in RETRYABLE_4XX or status < 200 or 300 <= status < 400:
            return self._back_off(parse_retry_after(answer.retry_after))
        # 413 (the agent would split; our batches are far below the cap), 422 and other refusals: dead letter
        stats.dead_lettered[f"http_{status}"] += len(entries)
        self.pending = None
        return True

    def _back_off(self, retry_after: float | None) -> bool:
        self.backoff.fail(retry_after)
        self.stats.backoffs += 1
        return False

    # --- the agent's life --------------------------------------------------------------------------

    async def run(self) -> None:
        plan = self.plan
        tick = plan.start + self.send_phase
        await _sleep_until(tick)
        while tick < plan.end:
            now = time.monotonic()
            self.stats.tick_lag_ms.append((now - tick) * 1000)
            self.collect(min(now, plan.end))
            if self.backoff.remaining() <= 0:
                await self.drain()
            tick += plan.send_interval_s
            while tick <= time.monotonic():  # a late loop skips ticks, as APScheduler coalesces missed runs
                tick += plan.send_interval_s
            await _sleep_until(tick)
        await self._drain_rest()
        self.stats.undelivered += len(self.spool) + (len(self.pending[2]) if self.pending else 0)
        self.stats.extras[self.spec.index] = sorted(self.extras)

    async def _drain_rest(self) -> None:
        """After the window: resend what is not yet acknowledged (nothing new is collected)."""
        while not self.rejected and (self.spool or self.pending) and time.monotonic() < self.plan.drain_end:
            wait = self.backoff.remaining()
            if wait > 0:
                await asyncio.sleep(min(wait, max(0.0, self.plan.drain_end - time.monotonic())))
                continue
            await self.drain()


def _is_duplicate(body: bytes) -> bool:
    """The 202 reply's ``duplicate``; a reply that is not the contract's JSON is counted as a new batch,
    so the exactly-once check (not this client) reports the disagreement."""
    try:
        reply = json.loads(body)
    except ValueError:
        return False
    return isinstance(reply, dict) and reply.get("duplicate") is True


async def _sleep_until(t: float) -> None:
    await asyncio.sleep(max(0.0, t - time.monotonic()))


async def run_agents(specs: list[AgentSpec], plan: Plan, *, server_urls: list[str], connections: int,
                     pool: EventPool, inventory: Inventory) -> ClientStats:
    """Run these agents to the end of the plan (window and drain) and return what they counted."""
    stats = ClientStats()
    clients = [new_pool(url, connections) for url in server_urls]
    try:
        agents = [SimAgent(spec, plan, pool=pool, inventory=inventory, client=clients[spec.server], stats=stats)
                  for spec in specs]
        await asyncio.gather(*(agent.run() for agent in agents))
    finally:
        for client in clients:
            await client.close()
    return stats
