"""``FactsCollector``: one ``facts.snapshot`` item with every fact kind, every 12 h by default.

Like the patch collector it is checked often and runs when due (the first check runs it). A kind
that fails — missing tool, unreadable file, even a bug — becomes ``{"available": false, "error": ...}``
and a line in ``errors``; the snapshot is always sent.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import ClassVar

from agent.collectors import base
from agent.collectors.facts._common import DEFAULT_TIMEOUT_S, Run, clip, make_runner, no_commands
from agent.collectors.facts.kinds import KINDS
from agent.wire import Item

log = logging.getLogger(__name__)

HALF_DAY_S = 43_200
MAX_ERRORS = 100
# The data fields of a ``facts.snapshot`` item, mirrored by collector/ingest/items/facts.py.
FACTS_FIELDS: tuple[str, ...] = ("kinds", "collected_in_ms", "errors")


def collect_facts(root: Path = Path("/"), *, run: Run | None = None, kinds: Iterable[str] | None = None,
                  timeout_s: float = DEFAULT_TIMEOUT_S) -> dict:
    """The ``facts.snapshot`` payload: ``{"kinds": {...}, "collected_in_ms": int, "errors": [...]}``."""
    if run is None:
        run = make_runner(timeout_s) if Path(root) == Path("/") else no_commands
    wanted = list(KINDS) if kinds is None else [k for k in KINDS if k in set(kinds)]
    started = time.perf_counter()
    results: dict[str, dict] = {}
    errors: list[str] = []
    for name in wanted:
        results[name] = collect_kind(name, root, run)
        if results[name].get("error"):
            errors.append(clip(f"{name}: {results[name]['error']}", 1024))
    return {"kinds": results, "collected_in_ms": int((time.perf_counter() - started) * 1000),
            "errors": errors[:MAX_ERRORS]}


def collect_kind(name: str, root: Path, run: Run) -> dict:
    """One kind; whatever goes wrong inside becomes an unavailable result, never an exception."""
    try:
        result = KINDS[name](root, run)
    except Exception as exc:  # one broken kind must not cost the other fourteen
        log.warning("fact kind %s failed", name, exc_info=True)
        return {"available": False, "error": clip(f"{type(exc).__name__}: {exc}", 1024)}
    result.setdefault("available", False)
    return result


class FactsCollector(base.Collector):
    """Compliance facts of a Linux host (sshd, PAM, accounts, firewall, audit, ...), one snapshot per run."""

    name = "facts"
    platforms: ClassVar[frozenset[str]] = frozenset({"linux"})
    fields: ClassVar[dict[str, tuple[str, ...]]] = {"facts.snapshot": FACTS_FIELDS}

    def __init__(self, *, root: Path = Path("/"), every_s: float = HALF_DAY_S, timeout_s: float = DEFAULT_TIMEOUT_S,
                 skip: Iterable[str] = (), run: Run | None = None, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self.root, self.every_s, self.timeout_s, self.clock = root, every_s, timeout_s, clock
        self.kinds = [k for k in KINDS if k not in set(skip)]
        self.runner = run
        self._last_run: float | None = None

    def due(self) -> bool:
        """First run, then every ``every_s``."""
        return self._last_run is None or self.clock() - self._last_run >= self.every_s

    def request(self) -> None:
        """Make the next run collect (on demand)."""
        self._last_run = None

    def collect(self) -> Iterable[Item]:
        if not self.due():
            return
        self._last_run = self.clock()
        yield Item("facts.snapshot", collect_facts(self.root, run=self.runner, kinds=self.kinds,
                                                   timeout_s=self.timeout_s))
