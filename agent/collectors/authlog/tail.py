"""Follow a log file from a persisted position across rotation, truncation and agent restarts.

The position is (device, inode, offset, first bytes of the file): the inode tells a renamed or
recreated file from the one we were reading, the first bytes catch copytruncate and inode reuse.
Reads are bounded per call; ``commit()`` persists only after the caller has used the lines, so a
crash re-reads a little rather than skipping anything.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

DEFAULT_PATHS: tuple[Path, ...] = (Path("/var/log/auth.log"), Path("/var/log/secure"))
HEAD_BYTES = 64  # enough to differ between two log files: the first line's timestamp and host


class TailError(Exception):
    """A log file exists but cannot be read (permissions, I/O)."""


class FileTail:
    """Bounded, restart-safe reader of the first existing file among ``paths``."""

    def __init__(self, state_file: Path, paths: Sequence[Path] = DEFAULT_PATHS, *, start_at_end: bool = True,
                 max_lines: int = 5000, max_bytes: int = 4 << 20, max_line_bytes: int = 16 << 10) -> None:
        self.state_file = Path(state_file)
        self.paths = tuple(Path(p) for p in paths)
        self.start_at_end = start_at_end
        self.max_lines, self.max_bytes, self.max_line_bytes = max_lines, max_bytes, max_line_bytes
        self.counters: Counter[str] = Counter()
        self.status = "not started"
        self._fh: BinaryIO | None = None
        self._path: Path | None = None
        self._skipping = False  # inside an oversize line whose end has not been read yet
        self._head = b""  # first bytes of the open file when last committed
        self._seen_file = False  # once a file was followed, any new one is read from its start
        self._state: dict[str, Any] | None = self._load()

    # --- public ---------------------------------------------------------------------------------------

    def read(self) -> list[bytes]:
        """Up to the per-call budget of complete new lines (bytes, newline included)."""
        lines: list[bytes] = []
        budget = [self.max_lines, self.max_bytes]
        while budget[0] > 0 and budget[1] > 0:
            if self._fh is None and not self._open():
                break
            self._check_truncated()
            lines += self._read_lines(budget, final=False)
            if budget[0] <= 0 or budget[1] <= 0 or not self._replaced():
                break
            lines += self._read_lines(budget, final=True)  # the old file's last lines, then switch
            if budget[0] <= 0 or budget[1] <= 0:
                break
            self.close()
            self._state = None  # the new file is read from its start
            self._open()
        return lines

    def commit(self) -> None:
        """Persist the position reached by the last ``read()``."""
        if self._fh is None or self._path is None:
            if not self._seen_file:
                return
            # The old file was finished and closed: whatever appears next is read from its start.
            state: dict[str, Any] = {"path": None, "dev": None, "inode": None, "offset": 0, "head": "",
                                     "skipping": False}
        else:
            fd = self._fh.fileno()
            st = os.fstat(fd)
            self._head = os.pread(fd, HEAD_BYTES, 0)
            state = {"path": str(self._path), "dev": st.st_dev, "inode": st.st_ino, "offset": self._fh.tell(),
                     "head": self._head.hex(), "skipping": self._skipping}
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        os.replace(tmp, self.state_file)
        self._state = state

    def close(self) -> None:
        """Close the file being followed."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    @property
    def following(self) -> bool:
        """True while a file is open (possibly a deleted or renamed one still being finished)."""
        return self._fh is not None

    def current_path(self) -> Path | None:
        """The first configured path that exists, or None."""
        return next((p for p in self.paths if p.exists()), None)

    # --- opening --------------------------------------------------------------------------------------

    def _load(self) -> dict[str, Any] | None:
        try:
            state = json.loads(self.state_file.read_text())
            bytes.fromhex(state.get("head") or "")
        except (OSError, ValueError, AttributeError, TypeError):
            return None  # a damaged position file means "no position", not a crash on every run
        return state if isinstance(state.get("offset"), int) and state["offset"] >= 0 else None

    def _open(self) -> bool:
        """Open the log at the persisted position (or its rotated copy), or at start/end when new."""
        path = self.current_path()
        if path is None:
            self.status = "waiting for file"
            return False
        fh = self._open_file(path)
        st = os.fstat(fh.fileno())
        state = self._state
        if state is not None and self._same_file(fh, st, state):
            grown = st.st_size >= state["offset"]  # else copytruncate while we were stopped
            self._attach(path, fh, state["offset"] if grown else 0, bytes.fromhex(state.get("head") or ""))
            self._skipping = bool(state.get("skipping")) and grown
        elif state is not None and (old := self._find_rotated(path, state)) is not None:
            fh.close()
            self._attach(old, self._open_file(old), state["offset"], bytes.fromhex(state.get("head") or ""))
            self._skipping = bool(state.get("skipping"))
        else:
            # Nothing known, or the old file is gone: a new file is read from its start, except on a
            # first start where history would flood the server.
            at_end = state is None and not self._seen_file and self.start_at_end
            self._attach(path, fh, self._line_start(fh, st.st_size) if at_end else 0, b"")
            self._skipping = False
        return True

    def _line_start(self, fh: BinaryIO, size: int) -> int:
        """Where the last (possibly unfinished) line begins, so starting at the end never cuts a line."""
        window = min(size, self.max_line_bytes)
        tail = os.pread(fh.fileno(), window, size - window)
        if not tail or tail.endswith(b"\n"):
            return size
        newline = tail.rfind(b"\n")
        return size - window + newline + 1 if newline >= 0 else size

    def _open_file(self, path: Path) -> BinaryIO:
        try:
            return open(path, "rb")  # kept open across calls: a renamed file is still ours
        except PermissionError:
            raise TailError(f"cannot read {path}: permission denied") from None
        except OSError as exc:
            raise TailError(f"cannot read {path}: {exc.strerror or exc}") from None

    def _attach(self, path: Path, fh: BinaryIO, offset: int, head: bytes) -> None:
        self._path, self._fh, self._head = path, fh, head
        self._seen_file = True
        fh.seek(offset)
        self.status = f"following {path}"

    @staticmethod
    def _same_file(fh: BinaryIO, st: os.stat_result, state: dict[str, Any]) -> bool:
        if (st.st_dev, st.st_ino) != (state.get("dev"), state.get("inode")):
            return False
        head = bytes.fromhex(state.get("head") or "")
        return os.pread(fh.fileno(), len(head), 0) == head or st.st_size < len(head)

    def _find_rotated(self, path: Path, state: dict[str, Any]) -> Path | None:
        """The renamed old file (``auth.log.1``, ``secure-20261122``) we were reading, if still there."""
        for candidate in sorted(path.parent.glob(path.name + "?*")):
            if candidate.suffix in (".gz", ".xz", ".bz2", ".zst"):
                continue
            try:
                st = candidate.stat()
            except OSError:
                continue
            if (st.st_dev, st.st_ino) == (state.get("dev"), state.get("inode")) and st.st_size >= state["offset"]:
                return candidate
        return None

    # --- reading --------------------------------------------------------------------------------------

    def _check_truncated(self) -> None:
        """copytruncate: the file shrank below our offset, or its first bytes changed."""
        assert self._fh is not None
        fd = self._fh.fileno()
        st = os.fstat(fd)
        pos = self._fh.tell()
        head = self._head
        changed = bool(head) and pos >= len(head) and os.pread(fd, len(head), 0) != head
        if st.st_size < pos or changed:
            self.counters["truncated"] += 1
            self._fh.seek(0)
            self._skipping = False
            self._head = b""

    def _replaced(self) -> bool:
        """True when the path now names another file than the one open (rotation, recreation)."""
        assert self._fh is not None
        path = self.current_path()
        if path is None:
            self.status = "file removed; waiting for a new one"
            return False  # keep the old handle: a renamed file may still be written to
        try:
            st = path.stat()
        except OSError:
            return False
        own = os.fstat(self._fh.fileno())
        return (st.st_dev, st.st_ino) != (own.st_dev, own.st_ino)

    def _read_lines(self, budget: list[int], final: bool) -> list[bytes]:
        """Complete lines within budget; an unfinished last line waits unless the file is final."""
        assert self._fh is not None
        fh, lines, cap = self._fh, [], self.max_line_bytes
        while budget[0] > 0 and budget[1] > 0:
            pos = fh.tell()
            line = fh.readline(cap + 1)
            if not line:
                break
            complete = line.endswith(b"\n")
            if not complete and not final and len(line) <= cap:
                fh.seek(pos)  # the writer has not finished this line yet
                break
            budget[1] -= len(line)
            if self._skipping:
                self._skipping = not complete
                continue
            if len(line) > cap:
                self.counters["oversize"] += 1
                self._skipping = not complete
                continue
            budget[0] -= 1
            lines.append(line)
        return lines
