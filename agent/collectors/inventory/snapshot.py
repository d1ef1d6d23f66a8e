"""``InventoryCollector``: sends the inventory as sections, each only when its content hash changed.

The first run, every ``full_every_s`` and after ``reset()`` it sends all sections (``full: true``).
Between runs it keeps only one hash per section, never the rows, to stay within the agent's memory
budget. A section whose function fails is left out of that snapshot and keeps its previous hash, so
it is sent as soon as it works again; after the snapshot is emitted the collector raises
``InventoryError`` naming the failed sections, which the base class turns into an ``agent.error``
item and an error status in the heartbeat. A full snapshot that lacks a section therefore means
"not collected this time", never "now empty".
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import ClassVar

from agent.collectors.base import Collector
from agent.collectors.inventory.sections import LINUX_SECTIONS, SectionFunction, gather
from agent.wire import Item, section_hash

SNAPSHOT_TYPE = "inventory.snapshot"


class InventoryError(RuntimeError):
    """One or more inventory sections could not be collected this run."""


class InventoryCollector(Collector):
    """Host inventory as hashed sections. Linux only; see windows.py for the Windows declaration."""

    name = "inventory"
    platforms = frozenset({"linux"})
    fields: ClassVar[dict[str, tuple[str, ...]]] = {SNAPSHOT_TYPE: ("full", "sections")}
    section_functions: ClassVar[Mapping[str, SectionFunction]] = LINUX_SECTIONS

    def __init__(self, root: Path = Path("/"), full_every_s: float = 86400,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self.root = Path(root)
        self.full_every_s = full_every_s
        self.clock = clock
        self.sent_hashes: dict[str, str] = {}
        self.last_full_at: float | None = None

    def reset(self) -> None:
        """Forget what was sent, so the next run sends every section (the server lost its copy)."""
        self.sent_hashes.clear()
        self.last_full_at = None

    def full_due(self, now: float) -> bool:
        return self.last_full_at is None or now - self.last_full_at >= self.full_every_s

    def collect(self) -> Iterator[Item]:
        """Yield one snapshot of the changed (or, when due, all) sections; nothing if nothing changed."""
        now = self.clock()
        full = self.full_due(now)
        rows, errors = gather(self.root, self.section_functions)
        sections = {}
        for name, section_rows in rows.items():
            digest = section_hash(section_rows)
            if full or self.sent_hashes.get(name) != digest:
                sections[name] = {"hash": digest, "rows": section_rows}
        if sections:
            yield Item(SNAPSHOT_TYPE, {"full": full, "sections": sections})
            # Only after the sink took the item: a failed emit must not mark sections as sent.
            self.sent_hashes.update((name, s["hash"]) for name, s in sections.items())
            if full:
                self.last_full_at = now
        if errors:
            failed = "; ".join(f"{name}: {error}" for name, error in sorted(errors.items()))
            raise InventoryError(f"inventory sections failed: {failed}")
