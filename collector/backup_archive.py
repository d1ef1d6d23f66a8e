"""The backup file: a tar archive holding ``manifest.json`` first, then the payload.

One file to copy, rotate and encrypt, and standard tools still open it: ``tar -xf`` gives the
manifest and a plain SQLite database (``khien.db``) or a ``pg_dump`` custom archive
(``khien.pgdump``). SQLite payloads are gzip-compressed (a database of JSON events shrinks several
fold); a PostgreSQL custom archive is compressed already. The manifest is read before anything is
restored; only the two named members are ever read (never ``extractall``: a tampered archive cannot
write outside the place we choose).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tarfile
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import BinaryIO

from collector.errors import InvalidInput, KhienError

FORMAT = "khien-backup"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
PAYLOAD_NAMES = {"sqlite": "khien.db", "postgresql": "khien.pgdump"}
MAX_MANIFEST_BYTES = 1024 * 1024
CHUNK = 1024 * 1024
COMPRESS_LEVEL = 6  # gzip's default trade-off; 9 costs twice the time for a few per cent

Progress = Callable[[str], None]


class BackupFailed(KhienError):
    """A backup or restore could not be completed (a tool failed, the disk is full...)."""

    status_code = 500


def human(size: int) -> str:
    """Bytes for people: 512 B, 3.4 MiB, 1.2 GiB."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


class Meter:
    """Reports how far a long copy has got, at most every ``every`` seconds, and once at the end."""

    def __init__(self, progress: Progress, label: str, total: int | None, every: float = 2.0) -> None:
        self.progress, self.label, self.total, self.every = progress, label, total, every
        self.done = 0
        self._last = time.monotonic()

    def update(self, done: int) -> None:
        self.done = done
        if time.monotonic() - self._last >= self.every:
            self._last = time.monotonic()
            self.progress(f"{self.label}: {self._figure()}")

    def finish(self) -> None:
        self.progress(f"{self.label}: {self._figure()}, done")

    def _figure(self) -> str:
        if self.total:
            return f"{human(self.done)} of {human(self.total)} ({100 * self.done // self.total}%)"
        return human(self.done)


@dataclass(frozen=True, slots=True)
class Manifest:
    """What a backup holds; the checksum covers the payload (the manifest is checked field by field)."""

    backend: str
    revision: str
    khien_version: str
    created_at: str
    source: str  # the database it was taken from, password redacted
    payload: str
    payload_bytes: int
    sha256: str
    tables: dict[str, int]
    format: str = FORMAT
    format_version: int = FORMAT_VERSION

    @property
    def rows(self) -> int:
        return sum(self.tables.values())

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), ensure_ascii=False, indent=2, sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes, *, where: Path) -> Manifest:
        """Parse and validate; InvalidInput naming the first thing wrong."""
        try:
            data = json.loads(raw)
        except (UnicodeDecodeError, ValueError):
            raise InvalidInput(f"{where}: the backup's manifest is not valid JSON") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise InvalidInput(f"{where}: not a Khiên backup (unknown manifest format)")
        if not isinstance(data.get("format_version"), int) or data["format_version"] > FORMAT_VERSION:
            raise InvalidInput(f"{where}: backup format {data.get('format_version')!r} is newer than this Khiên "
                               f"reads ({FORMAT_VERSION}): restore it with the Khiên version that made it")
        problem = _manifest_problem(data)
        if problem:
            raise InvalidInput(f"{where}: damaged backup manifest: {problem}")
        return cls(**{k: data[k] for k in cls.__dataclass_fields__})


def _manifest_problem(data: dict) -> str | None:
    backend = data.get("backend")
    if backend not in PAYLOAD_NAMES:
        return f"unknown backend {backend!r}"
    checks = {
        "revision": isinstance(data.get("revision"), str) and re.fullmatch(r"\w{1,64}", data["revision"]),
        "payload": data.get("payload") == PAYLOAD_NAMES[backend],
        "payload_bytes": isinstance(data.get("payload_bytes"), int) and data["payload_bytes"] >= 0,
        "sha256": isinstance(data.get("sha256"), str) and re.fullmatch(r"[0-9a-f]{64}", data["sha256"]),
        "tables": isinstance(data.get("tables"), dict) and all(
            isinstance(k, str) and isinstance(v, int) and v >= 0 for k, v in data["tables"].items()),
        **{k: isinstance(data.get(k), str) for k in ("khien_version", "created_at", "source")},
    }
    bad = [name for name, ok in checks.items() if not ok]
    return f"field {bad[0]!r} is missing or invalid" if bad else None


def file_sha256(path: Path, *, progress: Progress) -> tuple[int, str]:
    """Size and SHA-256 of a file."""
    digest, size = hashlib.sha256(), path.stat().st_size
    meter = Meter(progress, "backup: checksum", size)
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
            meter.update(meter.done + len(chunk))
    return size, digest.hexdigest()


class _MeteredReader:
    """A file read by ``tarfile`` that reports its progress."""

    def __init__(self, fh: BinaryIO, meter: Meter) -> None:
        self.fh, self.meter = fh, meter

    def read(self, size: int = -1) -> bytes:
        chunk = self.fh.read(size)
        self.meter.update(self.meter.done + len(chunk))
        return chunk


def write_archive(*, path: Path, manifest: Manifest, payload: Path, progress: Progress) -> None:
    """Write manifest and payload into ``path`` (an existing private file, truncated) and flush to disk."""
    compress = manifest.backend == "sqlite"
    options = {"compresslevel": COMPRESS_LEVEL} if compress else {}
    meter = Meter(progress, "backup: writing archive" + (" (gzip)" if compress else ""), manifest.payload_bytes)
    with path.open("r+b") as fh:
        fh.truncate(0)
        with tarfile.open(fileobj=fh, mode="w:gz" if compress else "w", format=tarfile.PAX_FORMAT,
                          **options) as tar:
            raw = manifest.to_json()
            tar.addfile(_member(MANIFEST_NAME, len(raw)), io.BytesIO(raw))
            with payload.open("rb") as src:
                tar.addfile(_member(manifest.payload, manifest.payload_bytes), _MeteredReader(src, meter))
        fh.flush()
        os.fsync(fh.fileno())
    meter.finish()


def fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _member(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, 0o600, int(time.time())
    return info


# Everything reading a damaged, truncated or foreign file can raise; each becomes one clear line.
READ_ERRORS = (tarfile.TarError, EOFError, zlib.error, OSError)


class Archive:
    """A backup file opened for restore: the manifest is read and checked against the archive on open."""

    def __init__(self, path: Path, manifest: Manifest) -> None:
        self.path, self.manifest = path, manifest

    @classmethod
    def open(cls, path: Path) -> Archive:
        if not path.exists():
            raise InvalidInput(f"{path}: no such file")
        if not path.is_file():
            raise InvalidInput(f"{path}: not a file")
        try:
            with tarfile.open(path, "r:*") as tar:
                first = tar.next()
                if first is None or first.name != MANIFEST_NAME or not first.isfile():
                    raise InvalidInput(f"{path}: not a Khiên backup (no {MANIFEST_NAME} at its start)")
                if first.size > MAX_MANIFEST_BYTES:
                    raise InvalidInput(f"{path}: not a Khiên backup (manifest of {human(first.size)})")
                manifest = Manifest.from_json(tar.extractfile(first).read(), where=path)
                member = tar.next()
        except PermissionError:
            raise InvalidInput(f"{path}: permission denied") from None
        except tarfile.ReadError:
            raise InvalidInput(f"{path}: not a Khiên backup (not a tar archive)") from None
        except READ_ERRORS as exc:
            raise InvalidInput(f"{path}: damaged or truncated backup ({exc})") from None
        if member is None or member.name != manifest.payload or not member.isfile():
            raise InvalidInput(f"{path}: damaged backup: {manifest.payload} missing after the manifest")
        if member.size != manifest.payload_bytes:
            raise InvalidInput(f"{path}: damaged backup: {manifest.payload} holds {member.size:,} bytes, "
                               f"the manifest says {manifest.payload_bytes:,}")
        return cls(path, manifest)

    @contextmanager
    def payload(self) -> Iterator[BinaryIO]:
        """The payload as a stream (read it once, in order)."""
        with tarfile.open(self.path, "r:*") as tar:
            tar.next()
            member = tar.next()
            stream = tar.extractfile(member) if member is not None else None
            if stream is None:
                raise InvalidInput(f"{self.path}: damaged backup: {self.manifest.payload} missing")
            yield stream

    def copy_payload(self, sink: BinaryIO | None, *, progress: Progress, label: str) -> None:
        """Stream the payload into ``sink`` (or nowhere) and check it against the manifest's checksum.

        Errors reading the backup are InvalidInput; errors writing ``sink`` (a full disk) BackupFailed.
        """
        digest, meter = hashlib.sha256(), Meter(progress, label, self.manifest.payload_bytes)
        try:
            with self.payload() as stream:
                while chunk := _read(stream, self.path):
                    digest.update(chunk)
                    if sink is not None:
                        _write(sink, chunk)
                    meter.update(meter.done + len(chunk))
        except READ_ERRORS as exc:  # opening the archive again failed
            raise InvalidInput(f"{self.path}: damaged or truncated backup ({exc})") from None
        if meter.done != self.manifest.payload_bytes or digest.hexdigest() != self.manifest.sha256:
            raise InvalidInput(f"{self.path}: checksum mismatch: the backup is damaged (SHA-256 "
                               f"{digest.hexdigest()[:16]}…, the manifest says {self.manifest.sha256[:16]}…)")
        meter.finish()


def _read(stream: BinaryIO, path: Path) -> bytes:
    try:
        return stream.read(CHUNK)
    except READ_ERRORS as exc:
        raise InvalidInput(f"{path}: damaged or truncated backup ({exc})") from None


def _write(sink: BinaryIO, chunk: bytes) -> None:
    try:
        sink.write(chunk)
    except OSError as exc:
        raise BackupFailed(f"cannot write {getattr(sink, 'name', 'the copy')}: {exc.strerror or exc}") from None
