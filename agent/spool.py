"""Durable on-disk queue (SQLite, WAL) between the collectors and the sender.

Guarantees, in order of importance:
- Nothing is removed until the collector acknowledged the batch that carried it.
- Items are assigned to a batch (its id persisted here) *before* the batch is sent, so after a kill
  mid-send the same batch id with the same items goes out again and the server's dedup on
  ``(agent_id, batch_id)`` makes the retry harmless: nothing lost, nothing duplicated.
- The spool never grows past its byte cap: the oldest unsent items are dropped first, and every drop
  is counted by reason in a persisted table (Sentry-style loss accounting), as are dead letters.
- A full or failing disk costs the items that cannot be stored, never the agent: they are counted
  (``disk_full``, ``spool_unwritable``) in memory until the counters can be written again, and the
  stats (hence the heartbeat) include them at once.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import threading
import uuid
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

from agent.config import AgentError
from agent.spoolfile import DISK_FULL, SPOOL_UNWRITABLE, connect, read_stats, stats_of, storage_failure
from agent.wire import SCHEMA_VERSION, Item, utc_now

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 256 * 1024 * 1024
DEFAULT_MAX_ITEM_BYTES = 16 * 1024 * 1024

# Drop reasons (low cardinality: they become heartbeat keys and metric labels).
SPOOL_FULL = "spool_full"
OVERSIZE_ITEM = "oversize_item"
ENCODE_ERROR = "encode_error"
# and DISK_FULL, SPOOL_UNWRITABLE (agent.spoolfile) for what the disk would not take

__all__ = ["DISK_FULL", "ENCODE_ERROR", "OVERSIZE_ITEM", "SPOOL_FULL", "SPOOL_UNWRITABLE", "PendingBatch", "Spool",
           "SpoolUnwritable", "read_stats"]


class SpoolUnwritable(AgentError):
    """The spool's file cannot be written now (``reason``: disk_full or spool_unwritable)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class PendingBatch(NamedTuple):
    """A batch assigned in the spool and awaiting acknowledgement; items are their spooled JSON text."""

    batch_id: str
    agent_time: str
    items: list[str]

    def encode(self) -> bytes:
        """The gzip body: the JSON of ``wire.Batch(...).encode()``, built without decoding the items.

        Decoding an inventory snapshot back into dicts and re-encoding it (plus ``asdict``'s deep
        copy) left ~2.5 MB more RSS behind on a host with 2,000 packages; this streams the text.
        """
        head = json.dumps({"schema": SCHEMA_VERSION, "batch_id": self.batch_id,
                           "agent_time": self.agent_time}, separators=(",", ":"))
        gz = zlib.compressobj(6, zlib.DEFLATED, 31)  # wbits 31: a gzip container, as gzip.compress
        chunks = [gz.compress(f'{head[:-1]},"items":['.encode())]
        for n, text in enumerate(self.items):
            chunks.append(gz.compress(("," + text if n else text).encode()))
        chunks.append(gz.compress(b"]}"))
        chunks.append(gz.flush())
        return b"".join(chunks)

    def decoded(self) -> list[dict[str, Any]]:
        """The items as dicts (for tests and inspection)."""
        return [json.loads(text) for text in self.items]


class Spool:
    """The agent's durable queue; safe to share between the collector and sender threads."""

    def __init__(self, path: Path, *, max_bytes: int = DEFAULT_MAX_BYTES,
                 max_item_bytes: int = DEFAULT_MAX_ITEM_BYTES,
                 dead_letter_max_bytes: int | None = None) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.max_item_bytes = min(max_item_bytes, max_bytes)
        # Dead letters are kept for inspection, not forever: their own small cap, oldest evicted.
        self.dead_letter_max_bytes = dead_letter_max_bytes or max(max_bytes // 8, 1)
        self._lock = threading.RLock()
        self._db = connect(path)
        self.losses = 0  # items dropped or dead-lettered since open (in memory, for quick checks)
        self._tx_losses = 0  # counted in the open transaction: real only once it commits
        # Losses that could not be written (the disk was full): kept here and written with the next
        # transaction that succeeds, so they are never lost and never counted twice.
        self._unsaved: dict[str, int] = {}
        self.unwritable: str | None = None  # why the last write failed; None once one succeeds
        self._items, self._bytes = self._db.execute(
            "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM items").fetchone()

    # --- writing ----------------------------------------------------------------------------------

    def put(self, item: Item | dict[str, Any], *, raise_unwritable: bool = False) -> bool:
        """Queue one item; False if it was dropped (and counted). See ``put_many`` for ``raise_unwritable``."""
        return self.put_many([item], raise_unwritable=raise_unwritable) == 1

    def put_many(self, items: Iterable[Item | dict[str, Any]], *, raise_unwritable: bool = False) -> int:
        """Queue items in one transaction; returns how many were kept (drops are counted).

        When the disk refuses the write the items are counted as dropped under the storage reason,
        or, with ``raise_unwritable``, left uncounted and SpoolUnwritable raised: the caller has
        another way out for them (the heartbeat goes to the server directly).
        """
        rows: list[tuple[int, str]] = []
        refused: dict[str, int] = {}
        for item in items:
            body = self._encode(item)
            if body is None:
                refused[ENCODE_ERROR] = refused.get(ENCODE_ERROR, 0) + 1
                continue
            size = len(body.encode())
            if size > self.max_item_bytes:
                refused[OVERSIZE_ITEM] = refused.get(OVERSIZE_ITEM, 0) + 1
                log.warning("dropped an item of %d bytes (over %d)", size, self.max_item_bytes)
                continue
            rows.append((size, body))
        with self._lock:
            try:
                with self._writing(), self._tx():
                    for reason, count in refused.items():
                        self._count("dropped", reason, count)
                    self._db.executemany("INSERT INTO items(size, body) VALUES (?, ?)", rows)
                    self._items += len(rows)
                    self._bytes += sum(size for size, _ in rows)
                    self._enforce_cap()
            except SpoolUnwritable as exc:
                for reason, count in refused.items():  # lost whatever the disk does
                    self._count_unsaved(reason, count)
                if raise_unwritable:
                    raise
                self._count_unsaved(exc.reason, len(rows))
                return 0
        return len(rows)

    def _encode(self, item: Item | dict[str, Any]) -> str | None:
        try:
            data = item.to_dict() if isinstance(item, Item) else item
            return json.dumps(data, separators=(",", ":"), ensure_ascii=False)
        except (TypeError, ValueError) as exc:  # a collector bug must cost one item, not the agent
            log.warning("dropped an item that is not JSON-serialisable: %s", exc)
            return None

    def _enforce_cap(self) -> None:
        # Oldest unassigned items go first; a pending batch is dropped whole only if nothing else
        # is left, so a resent batch never changes content under its id.
        while self._bytes > self.max_bytes:
            rows = self._db.execute(
                "SELECT id, size FROM items WHERE batch_id IS NULL ORDER BY id LIMIT 256").fetchall()
            if not rows:
                oldest = self._db.execute("SELECT batch_id FROM batches ORDER BY first_id LIMIT 1").fetchone()
                if oldest is None:
                    return
                self._count("dropped", SPOOL_FULL, self._remove_batch(oldest[0]))
                continue
            excess, doomed = self._bytes - self.max_bytes, []
            for row_id, size in rows:
                if excess <= 0:
                    break
                doomed.append(row_id)
                excess -= size
                self._bytes -= size
            self._db.executemany("DELETE FROM items WHERE id = ?", [(i,) for i in doomed])
            self._items -= len(doomed)
            self._count("dropped", SPOOL_FULL, len(doomed))

    # --- batching ---------------------------------------------------------------------------------

    def next_batch(self, max_items: int, max_bytes: int) -> PendingBatch | None:
        """The oldest pending batch, else a new one assigned from the oldest items; None if empty.

        SpoolUnwritable if a new batch cannot be recorded: sending one whose id is not on disk could
        duplicate its items after a restart.
        """
        with self._lock:
            pending = self._db.execute(
                "SELECT batch_id, agent_time FROM batches ORDER BY first_id LIMIT 1").fetchone()
            if pending is not None:
                return PendingBatch(pending[0], pending[1], self._batch_items(pending[0]))
            rows = self._db.execute(
                "SELECT id, size FROM items WHERE batch_id IS NULL ORDER BY id LIMIT ?",
                (max(1, max_items),)).fetchall()
            if not rows:
                return None
            chosen, total = [], 0
            for row_id, size in rows:
                if chosen and total + size > max_bytes:
                    break
                chosen.append(row_id)
                total += size
            batch_id, agent_time = str(uuid.uuid4()), utc_now()
            with self._writing(), self._tx():
                self._assign(batch_id, agent_time, chosen)
            return PendingBatch(batch_id, agent_time, self._batch_items(batch_id))

    def _assign(self, batch_id: str, agent_time: str, ids: list[int]) -> None:
        self._db.execute("INSERT INTO batches(batch_id, agent_time, first_id) VALUES (?, ?, ?)",
                         (batch_id, agent_time, ids[0]))
        self._db.executemany("UPDATE items SET batch_id = ? WHERE id = ?", [(batch_id, i) for i in ids])

    def _batch_items(self, batch_id: str) -> list[str]:
        rows = self._db.execute("SELECT body FROM items WHERE batch_id = ? ORDER BY id", (batch_id,))
        return [body for (body,) in rows]

    def ack(self, batch_id: str) -> int:
        """The collector stored ``batch_id``: remove its items; returns how many.

        SpoolUnwritable if the removal cannot be written: the batch stays pending and its resend is
        answered as a duplicate, so nothing is stored twice.
        """
        with self._lock, self._writing(), self._tx():
            removed = self._remove_batch(batch_id)
        with self._lock, contextlib.suppress(sqlite3.Error):  # only housekeeping: the next ack tries again
            self._db.execute("PRAGMA incremental_vacuum(512)").fetchall()  # give freed pages back to the disk
        return removed

    def split(self, batch_id: str) -> bool:
        """Replace a too-large pending batch by two halves (new ids); False if it has one item."""
        with self._lock:
            ids = [r[0] for r in self._db.execute(
                "SELECT id FROM items WHERE batch_id = ? ORDER BY id", (batch_id,))]
            if len(ids) < 2:
                return False
            # New ids are safe: a 413 means the server did not store the original batch.
            with self._writing(), self._tx():
                self._db.execute("DELETE FROM batches WHERE batch_id = ?", (batch_id,))
                half = len(ids) // 2
                agent_time = utc_now()
                self._assign(str(uuid.uuid4()), agent_time, ids[:half])
                self._assign(str(uuid.uuid4()), agent_time, ids[half:])
            return True

    def dead_letter(self, batch_id: str, reason: str, detail: str | None = None) -> int:
        """Move a rejected batch's items to ``dead_letters`` and count them by reason."""
        with self._lock, self._writing(), self._tx():
            self._db.execute(
                "INSERT INTO dead_letters(batch_id, reason, detail, at, size, body) "
                "SELECT batch_id, ?, ?, ?, size, body FROM items WHERE batch_id = ? ORDER BY id",
                (reason, (detail or "")[:1000] or None, utc_now(), batch_id))
            moved = self._remove_batch(batch_id)
            self._count("dead_letter", reason, moved)
            self._trim_dead_letters()
        return moved

    def _remove_batch(self, batch_id: str) -> int:
        count, size = self._db.execute(
            "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM items WHERE batch_id = ?", (batch_id,)).fetchone()
        self._db.execute("DELETE FROM items WHERE batch_id = ?", (batch_id,))
        self._db.execute("DELETE FROM batches WHERE batch_id = ?", (batch_id,))
        self._items -= count
        self._bytes -= size
        return count

    def _trim_dead_letters(self) -> None:
        total = self._db.execute("SELECT COALESCE(SUM(size), 0) FROM dead_letters").fetchone()[0]
        if total <= self.dead_letter_max_bytes:
            return
        excess, doomed = total - self.dead_letter_max_bytes, []
        for row_id, size in self._db.execute("SELECT id, size FROM dead_letters ORDER BY id"):
            if excess <= 0:
                break
            doomed.append((row_id,))
            excess -= size
        self._db.executemany("DELETE FROM dead_letters WHERE id = ?", doomed)

    # --- accounting -------------------------------------------------------------------------------

    def count_drop(self, reason: str, count: int = 1) -> None:
        """Record items lost outside the spool (e.g. by a collector) under ``reason``; never raises
        for a full disk (the count is then kept in memory until it can be written)."""
        with self._lock:
            try:
                with self._writing(), self._tx():
                    self._count("dropped", reason, count)
            except SpoolUnwritable:
                self._count_unsaved(reason, count)

    def _count(self, kind: str, reason: str, count: int) -> None:
        if count > 0:
            self._tx_losses += count
            self._write_counter(kind, reason, count)

    def _write_counter(self, kind: str, reason: str, count: int) -> None:
        self._db.execute(
            "INSERT INTO counters(kind, reason, count) VALUES (?, ?, ?) "
            "ON CONFLICT(kind, reason) DO UPDATE SET count = count + excluded.count", (kind, reason, count))

    def _count_unsaved(self, reason: str, count: int) -> None:
        # Only drops land here: a batch that cannot be dead-lettered simply stays pending.
        if count > 0:
            self.losses += count
            self._unsaved[reason] = self._unsaved.get(reason, 0) + count

    def stats(self) -> dict[str, Any]:
        """Depth, bytes, drops by reason (written or not yet) and dead letters (for the heartbeat and ``status``)."""
        with self._lock:
            stats = stats_of(self._db, self._items, self._bytes)
            for reason, count in self._unsaved.items():
                stats["dropped"][reason] = stats["dropped"].get(reason, 0) + count
            return stats

    def close(self) -> None:
        """Close the database (checkpointing the WAL)."""
        with self._lock:
            self._db.close()

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """Turn a disk that refuses writes into SpoolUnwritable (other database errors pass)."""
        try:
            yield
        except sqlite3.Error as exc:
            reason = storage_failure(exc)
            if reason is None:
                raise
            if self.unwritable != reason:
                log.warning("spool %s cannot be written (%s): %s; counting what cannot be kept",
                            self.path, reason, exc)
            self.unwritable = reason
            raise SpoolUnwritable(reason, f"spool {self.path} cannot be written ({reason}): {exc}") from None
        if self.unwritable is not None:
            log.info("spool %s is writable again", self.path)
            self.unwritable = None

    @contextlib.contextmanager
    def _tx(self) -> Iterator[None]:
        # Re-entrant: only the outermost call opens and commits the transaction.
        if self._db.in_transaction:
            yield
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
            for reason, count in self._unsaved.items():  # drops a full disk held back (already in losses)
                self._write_counter("dropped", reason, count)
            self._db.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise
        self._unsaved.clear()
        self.losses += self._tx_losses
        self._tx_losses = 0

    def _rollback(self) -> None:
        # SQLite may have rolled back by itself (SQLITE_FULL does); a second ROLLBACK would raise.
        if self._db.in_transaction:
            try:
                self._db.execute("ROLLBACK")
            except sqlite3.Error as exc:
                log.warning("spool rollback failed: %s", exc)
        self._tx_losses = 0
        try:  # the in-memory depth was moved along with statements that are now undone
            self._items, self._bytes = self._db.execute(
                "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM items").fetchone()
        except sqlite3.Error as exc:
            log.warning("cannot re-read the spool depth: %s", exc)


