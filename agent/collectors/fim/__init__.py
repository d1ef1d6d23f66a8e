"""File integrity monitoring (``file.change``): SQLite baseline, realtime inotify, periodic rescan."""

from __future__ import annotations

from agent.collectors.fim.collector import FimCollector
from agent.collectors.fim.events import FIELDS, ITEM_TYPE

__all__ = ["FIELDS", "ITEM_TYPE", "FimCollector"]
