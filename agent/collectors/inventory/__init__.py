"""Host inventory (DESIGN.md §4): one module per section group, gathered into hashed snapshots."""

from __future__ import annotations

from pathlib import Path

from agent.collectors.inventory.identity import collect_identity
from agent.collectors.inventory.sections import LINUX_SECTIONS, gather
from agent.collectors.inventory.snapshot import InventoryCollector, InventoryError


def collect_sections(root: Path = Path("/")) -> dict[str, list[dict]]:
    """Every inventory section as a list of rows; a section that fails is logged and left out."""
    rows, _errors = gather(root, LINUX_SECTIONS)
    return rows


__all__ = ["InventoryCollector", "InventoryError", "collect_identity", "collect_sections"]
