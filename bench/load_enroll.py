"""Before the run: units, enrollment tokens, N enrolled agents and each host's first full inventory.

Enrollment goes through ``POST /api/v1/agent/enroll`` like ``khien-agent enroll`` (``--enroll-via
service`` calls the same service function in bulk transactions instead, when only the run matters).
Hosts whose packages change during the run first send their full inventory, so the change is a delta.
Credentials are kept in a state file next to the database, so ``--reuse`` skips all of this.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import math
import random
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from agent import __version__ as AGENT_VERSION
from agent.sender import BATCHES_PATH, ENROLL_PATH
from agent.transport import parse_retry_after
from agent.wire import Batch, utc_now
from bench.load_agents import AgentSpec
from bench.load_http import Answer, Pool, TransportError, new_pool
from bench.load_items import Inventory, changes_packages_within, heartbeat, identity
from collector.agents import service as agents
from collector.db import Database
from collector.errors import Conflict
from collector.units import service as units
from collector.units.models import UnitCreate

AGENTS_PER_UNIT = 25  # a province of 10,000 servers in 400 departments and communes
PROVINCE = "LOAD"
CONCURRENCY = 32
MAX_ATTEMPTS = 20


class PrepareError(RuntimeError):
    """Enrollment or the first inventory failed for an agent: the run would measure fewer agents."""


def state_path(database_url: str) -> Path:
    key = hashlib.sha256(database_url.encode()).hexdigest()[:12]
    return Path("/tmp") / f"khien-bench-load-{key}.json"


def load_state(database_url: str) -> list[dict[str, Any]]:
    path = state_path(database_url)
    return json.loads(path.read_text())["agents"] if path.exists() else []


def save_state(database_url: str, agents_state: list[dict[str, Any]]) -> None:
    state_path(database_url).write_text(json.dumps({"database_url": database_url, "agents": agents_state}))


def unit_tokens(db: Database, *, count: int) -> list[str]:
    """One enrollment token per unit for ``count`` agents, creating the units that are missing."""
    n_units = max(1, math.ceil(count / AGENTS_PER_UNIT))
    tokens = []
    with db.transaction() as session, contextlib.suppress(Conflict):  # --reuse: the units are there already
        units.create(session, data=UnitCreate(code=PROVINCE, name="Tỉnh tải thử", kind="province"))
    for i in range(n_units):
        code = f"{PROVINCE}-{i:04d}"
        with db.transaction() as session:
            with contextlib.suppress(Conflict):
                units.create(session, data=UnitCreate(code=code, name=f"Sở {i}", kind="department",
                                                      parent_code=PROVINCE))
            tokens.append(agents.create_enrollment_token(session, unit_code=code, expires_in=timedelta(days=1),
                                                         max_uses=None))
    return tokens


async def _post(client: Pool, path: str, *, what: str, ok: tuple[int, ...], body: bytes,
                headers: dict[str, str]) -> Answer:
    """One request with the agent's patience: 429/503 and network errors are retried after a wait."""
    for attempt in range(MAX_ATTEMPTS):
        try:
            answer = await client.post(path, body=body, headers=headers)
        except TransportError as exc:
            error = str(exc)
            await asyncio.sleep(min(30.0, 2 ** attempt))
            continue
        if answer.status in ok:
            return answer
        if answer.status in (429, 503):
            error = f"HTTP {answer.status}"
            await asyncio.sleep(parse_retry_after(answer.retry_after) or min(30.0, 2 ** attempt))
            continue
        raise PrepareError(f"{what}: HTTP {answer.status}: {answer.body[:300].decode(errors='replace')}")
    raise PrepareError(f"{what}: gave up after {MAX_ATTEMPTS} attempts ({error})")


async def _enroll_http(indexes: list[int], tokens: list[str], urls: list[str], run_tag: str) -> list[dict[str, Any]]:
    clients = [new_pool(url, CONCURRENCY) for url in urls]
    gate = asyncio.Semaphore(CONCURRENCY * len(urls))

    async def one(index: int) -> dict[str, Any]:
        ident = identity(index, run_tag)
        body = {"token": tokens[index // AGENTS_PER_UNIT], **ident, "agent_version": AGENT_VERSION, "platform": "linux"}
        async with gate:
            answer = await _post(clients[index % len(urls)], ENROLL_PATH, what=f"enroll agent {index}", ok=(200, 201),
                                 body=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
        reply = json.loads(answer.body)
        return {"index": index, "agent_id": reply["agent_id"], "secret": reply["secret"], "extras": []}

    try:
        return list(await asyncio.gather(*(one(i) for i in indexes)))
    finally:
        for client in clients:
            await client.close()


def _enroll_service(db: Database, indexes: list[int], tokens: list[str], run_tag: str) -> list[dict[str, Any]]:
    out = []
    for start in range(0, len(indexes), 50):  # a long session slows down as its identity map grows
        with db.transaction() as session:
            for index in indexes[start:start + 50]:
                got = agents.enroll(session, token=tokens[index // AGENTS_PER_UNIT], identity=identity(index, run_tag),
                                    agent_version=AGENT_VERSION)
                out.append({"index": index, "agent_id": got.agent_id, "secret": got.secret, "extras": []})
    return out


async def _first_inventory(enrolled: list[dict[str, Any]], urls: list[str], inventory: Inventory,
                           run_tag: str) -> None:
    clients = [new_pool(url, CONCURRENCY) for url in urls]
    gate = asyncio.Semaphore(CONCURRENCY * len(urls))

    async def one(entry: dict[str, Any]) -> None:
        index = entry["index"]
        snapshot = inventory.full_snapshot(identity(index, run_tag), set(entry["extras"]))
        items = [{"type": "inventory.snapshot", "ts": utc_now(), "data": snapshot},
                 {"type": "host.heartbeat", "ts": utc_now(),
                  "data": heartbeat(uptime_s=5.0, spool_items=0, items_sent=0, rng=random.Random(index))}]
        headers = {"Authorization": f"Bearer {entry['agent_id']}.{entry['secret']}", "Content-Encoding": "gzip",
                   "Content-Type": "application/json", "User-Agent": f"khien-agent/{AGENT_VERSION}"}
        async with gate:
            await _post(clients[index % len(urls)], BATCHES_PATH, what=f"first inventory of agent {index}", ok=(202,),
                        body=Batch(items).encode(), headers=headers)

    try:
        await asyncio.gather(*(one(e) for e in enrolled))
    finally:
        for client in clients:
            await client.close()


def prepare_agents(db: Database, *, database_url: str, count: int, urls: list[str], via: str, packages: int,
                   reuse: bool, first_inventory: str, every_s: float, duration_s: float
                   ) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """The first ``count`` agents' credentials: enroll the missing ones, then send first inventories.

    ``first_inventory="needed"`` sends it only for hosts whose packages change during the run, so their
    change is a delta (a first inventory costs the server ~0.1 s a host on SQLite: 17 min for 10,000);
    hosts without one ingest heartbeats and events exactly the same way. ``"all"`` sends every host's.
    """
    known = load_state(database_url) if reuse else []
    run_tag = known[0].get("run_tag", "") if known else uuid.uuid4().hex[:8]
    missing = list(range(len(known), count))
    timing: dict[str, float] = {"enrolled_now": len(missing)}
    if missing:
        t = time.perf_counter()
        tokens = unit_tokens(db, count=count)
        if via == "http":
            fresh = asyncio.run(_enroll_http(missing, tokens, urls, run_tag))
        else:
            fresh = _enroll_service(db, missing, tokens, run_tag)
        timing["enroll_s"] = round(time.perf_counter() - t, 1)
        timing["enroll_per_s"] = round(len(missing) / timing["enroll_s"], 1) if timing["enroll_s"] else 0.0
        for entry in fresh:
            entry["run_tag"] = run_tag
        known = known + fresh
        save_state(database_url, known)
    chosen = known[:count]
    due = [e for e in chosen if not e.get("inventoried") and (
        first_inventory == "all" or changes_packages_within(e["index"], every_s=every_s, duration_s=duration_s))]
    timing["first_inventories"] = len(due)
    if due:
        t = time.perf_counter()
        asyncio.run(_first_inventory(due, urls, Inventory(packages=packages), run_tag))
        timing["first_inventory_s"] = round(time.perf_counter() - t, 1)
        for entry in due:
            entry["inventoried"] = True
        save_state(database_url, known)
    return chosen, timing


def specs_for(entries: list[dict[str, Any]], *, servers: int) -> list[AgentSpec]:
    """Agents spread round-robin over the servers, as a proxy would balance them."""
    return [AgentSpec(index=e["index"], agent_id=e["agent_id"], secret=e["secret"], server=e["index"] % servers,
                      identity=identity(e["index"], e.get("run_tag", "")), extras=tuple(e.get("extras") or ()))
            for e in entries]
