"""Correlation state for threshold and sequence rules, bounded per rule.

Each entry is ``(epoch_seconds, seq, event_id, datetime)``: ``seq`` is the engine's arrival counter,
which keeps ordering total and deterministic for equal timestamps (later fields are never compared).
"""

from __future__ import annotations

import bisect
from collections import OrderedDict, deque
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

Entry = tuple[float, int, Any, Any]


class GroupTable:
    """Live groups in least-recently-active order, capped at ``max_groups``."""

    def __init__(self, max_groups: int) -> None:
        self.max_groups = max(1, max_groups)
        self.groups: OrderedDict[Hashable, Any] = OrderedDict()
        self.evicted = 0
        self.expired = 0

    def get(self, key: Hashable) -> Any:
        state = self.groups.get(key)
        if state is not None:
            self.groups.move_to_end(key)
        return state

    def put(self, key: Hashable, state: Any) -> None:
        self.groups[key] = state
        self.groups.move_to_end(key)
        while len(self.groups) > self.max_groups:
            self.groups.popitem(last=False)
            self.evicted += 1

    def pop(self, key: Hashable) -> None:
        self.groups.pop(key, None)

    def expire(self, is_dead) -> None:
        """Drop dead groups from the least-recently-active end; stop at the first live one.

        Activity order is close to time order, so this finds nearly all dead groups in O(dead);
        the few it misses are bounded by ``max_groups`` anyway.
        """
        while self.groups:
            key, state = next(iter(self.groups.items()))
            if not is_dead(state):
                return
            del self.groups[key]
            self.expired += 1


class ThresholdTracker:
    """``count`` matching events of one group within ``window`` seconds fire and reset the group."""

    def __init__(self, count: int, window: float, max_groups: int) -> None:
        self.count = count
        self.window = window
        self.table = GroupTable(max_groups)
        self.now = float("-inf")

    def add(self, key: Hashable, entry: Entry) -> list[Entry] | None:
        """Record a matching event; return the entries that made the group fire, if it did."""
        ts = entry[0]
        if ts > self.now:
            self.now = ts
            self.table.expire(lambda entries: entries[-1][0] < self.now - self.window)
        entries = self.table.get(key)
        if entries is None:
            entries = []
            self.table.put(key, entries)
        newest = max(ts, entries[-1][0]) if entries else ts
        if ts < newest - self.window:
            return None  # arrived too late to share a window with the group's newer events
        bisect.insort(entries, entry)
        cutoff = newest - self.window
        drop = 0
        while entries[drop][0] < cutoff:
            drop += 1
        del entries[:drop]
        if len(entries) < self.count:
            return None
        self.table.pop(key)
        return entries


@dataclass
class _SeqState:
    head: deque  # entries of step 0 (the latest `count` of them)
    rest: list[Entry] = field(default_factory=list)  # entries of later steps
    step: int = 0
    matched: int = 0  # events matched in the current step (steps after 0)

    @property
    def start(self) -> float:
        return self.head[0][0]


class SequenceTracker:
    """Steps must complete in order within ``within`` seconds of the sequence's first event."""

    def __init__(self, counts: Sequence[int], within: float, max_groups: int) -> None:
        self.counts = tuple(counts)
        self.within = within
        self.table = GroupTable(max_groups)
        self.now = float("-inf")

    def add(self, key: Hashable, entry: Entry, matches: Sequence[bool]) -> list[Entry] | None:
        """Feed an event that matched at least one step; return all entries when the sequence completes."""
        ts = entry[0]
        if ts > self.now:
            self.now = ts
            self.table.expire(lambda st: st.start < self.now - self.within)
        state = self.table.get(key)
        if state is not None and ts - state.start > self.within:
            self.table.pop(key)  # too slow: whatever was collected can no longer complete in time
            state = None
        if state is None:
            if not matches[0]:
                return None  # a later step without its beginning means nothing
            state = _SeqState(deque(maxlen=self.counts[0]))
            self.table.put(key, state)
        return self._advance(key, state, entry, matches)

    def _advance(self, key: Hashable, state: _SeqState, entry: Entry, matches: Sequence[bool]) -> list[Entry] | None:
        step = state.step
        if step == 0 or (step == 1 and state.matched == 0 and not matches[1] and matches[0]):
            if not matches[0]:
                return None
            # More first-step events before the second step slide the start forward: the latest ones count.
            state.head.append(entry)
            while state.head and state.head[0][0] < entry[0] - self.within:
                state.head.popleft()
            state.step = 1 if len(state.head) == self.counts[0] else 0
            return self._finish(key, state) if state.step == len(self.counts) else None
        if not matches[step]:
            return None
        state.rest.append(entry)
        state.matched += 1
        if state.matched == self.counts[step]:
            state.step += 1
            state.matched = 0
        return self._finish(key, state) if state.step == len(self.counts) else None

    def _finish(self, key: Hashable, state: _SeqState) -> list[Entry]:
        self.table.pop(key)
        return sorted([*state.head, *state.rest])
