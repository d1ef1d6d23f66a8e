"""Evidence file storage: read capped, check the type by content, optionally virus-scan, store by hash.

A file is first written to ``<data dir>/evidence/tmp/`` while it is hashed and measured, checked
there, and only then renamed to ``evidence/<sha256[:2]>/<sha256>``: a rejected or interrupted
upload leaves nothing behind, and a file uploaded twice is stored once.
"""

from __future__ import annotations

import codecs
import contextlib
import hashlib
import os
import shlex
import subprocess
import tempfile
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from collector.errors import InvalidInput, KhienError, NotFound, PayloadTooLarge

CHUNK = 1 << 16
SCAN_ENV = "KHIEN_EVIDENCE_SCAN_COMMAND"
SCAN_TIMEOUT_S = 60
EVIDENCE_DIR = "evidence"
MAX_NAME = 255

# Office documents are ZIP containers: the extension says which kind, a member proves it is one.
OFFICE = {
    "docx": ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", "[Content_Types].xml"),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "[Content_Types].xml"),
    "pptx": ("application/vnd.openxmlformats-officedocument.presentationml.presentation", "[Content_Types].xml"),
    "odt": ("application/vnd.oasis.opendocument.text", "mimetype"),
    "ods": ("application/vnd.oasis.opendocument.spreadsheet", "mimetype"),
    "odp": ("application/vnd.oasis.opendocument.presentation", "mimetype"),
}
# Detected type → the extensions a name may carry for it (no extension is also fine, except for office).
EXTENSIONS = {
    "application/pdf": {"pdf"},
    "image/png": {"png"},
    "image/jpeg": {"jpg", "jpeg"},
    "text/plain": {"txt", "log", "md"},
    "text/csv": {"csv"},
}
ALLOWED = "PDF, PNG, JPEG, DOCX/XLSX/PPTX/ODT/ODS/ODP, plain text or CSV (UTF-8)"
MAGIC = ((b"%PDF-", "application/pdf"), (b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"))
# Recognised only to say clearly why a file is refused.
REFUSED_MAGIC = ((b"MZ", "a Windows executable"), (b"\x7fELF", "an ELF executable"), (b"#!", "a script"),
                 (b"\xca\xfe\xba\xbe", "a Java class or Mach-O binary"), (b"\xcf\xfa\xed\xfe", "a Mach-O binary"))
HTML_MARKERS = (b"<!doctype", b"<html", b"<script", b"<svg", b"<iframe", b"<body", b"<?xml", b"<head")


class RejectedFile(KhienError):
    """A file whose type is not on the allowlist (400)."""

    status_code = 400


class ScannerUnavailable(KhienError):
    """The configured virus scanner could not run: refuse rather than store unscanned files."""

    status_code = 503


@dataclass(slots=True)
class Staged:
    """A checked upload waiting in the temp directory; ``store`` moves it into place."""

    data_dir: Path
    temp: Path
    filename: str
    content_type: str
    size: int
    sha256: str

    @property
    def stored_path(self) -> str:
        return f"{EVIDENCE_DIR}/{self.sha256[:2]}/{self.sha256}"

    def store(self) -> str:
        """Move the bytes to their content address (or drop them if already there); the relative path."""
        final = self.data_dir / self.stored_path
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.exists():
            self.discard()
        else:
            os.replace(self.temp, final)  # atomic on one filesystem: readers never see a partial file
        return self.stored_path

    def discard(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.temp.unlink()


def stored_file(*, data_dir: Path, stored_path: str, file_id: int) -> Path:
    """Where a stored evidence file's bytes are; NotFound if the row points outside the evidence folder
    (a tampered row must not serve /etc/shadow) or the bytes are gone."""
    root = (data_dir / EVIDENCE_DIR).resolve()
    path = (data_dir / stored_path).resolve()
    if root not in path.parents or not path.is_file():
        raise NotFound(f"evidence file {file_id}: content missing from the data directory")
    return path


def stage(*, data_dir: Path, max_bytes: int, filename: str, stream: BinaryIO) -> Staged:
    """Copy ``stream`` to a temp file (at most ``max_bytes``), check its type and scan it; reject or return it."""
    name = sanitise_filename(filename)
    tmp_dir = data_dir / EVIDENCE_DIR / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    fd, raw_path = tempfile.mkstemp(dir=tmp_dir, prefix="upload-")
    temp = Path(raw_path)
    try:
        digest, size, head, text = _copy(stream, fd, max_bytes)
        if size == 0:
            raise RejectedFile("the file is empty")
        content_type = detect_type(head=head, text=text, filename=name, path=temp)
        _scan(temp)
        return Staged(data_dir=data_dir, temp=temp, filename=name, content_type=content_type, size=size,
                      sha256=digest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        raise


@dataclass(slots=True)
class _TextState:
    """Whether the bytes read so far are UTF-8 text without NUL bytes."""

    utf8: bool = True
    nul: bool = False


def _copy(stream: BinaryIO, fd: int, max_bytes: int) -> tuple[str, int, bytes, _TextState]:
    digest, size, head = hashlib.sha256(), 0, b""
    text, decoder = _TextState(), codecs.getincrementaldecoder("utf-8")()
    with os.fdopen(fd, "wb") as out:
        while chunk := stream.read(CHUNK):
            size += len(chunk)
            if size > max_bytes:  # stop here: never read an unbounded body
                raise PayloadTooLarge(f"evidence file over the {max_bytes}-byte limit")
            if len(head) < 512:
                head += chunk[:512 - len(head)]
            digest.update(chunk)
            text.nul = text.nul or b"\0" in chunk
            if text.utf8:
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError:
                    text.utf8 = False
            out.write(chunk)
        if text.utf8:
            try:
                decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                text.utf8 = False
        out.flush()
        os.fsync(out.fileno())
    return digest.hexdigest(), size, head, text


def detect_type(*, head: bytes, text: _TextState, filename: str, path: Path) -> str:
    """The content type the bytes prove, if it is allowed and agrees with the name; else RejectedFile."""
    ext = filename.rsplit(".", 1)[1].lower() if "." in filename else ""
    for magic, content_type in MAGIC:
        if head.startswith(magic):
            return _agree(content_type, ext)
    if head.startswith(b"PK\x03\x04"):
        return _office(ext, path)
    for magic, what in REFUSED_MAGIC:
        if head.startswith(magic):
            raise RejectedFile(f"{what} is not accepted as evidence; allowed: {ALLOWED}")
    if text.nul:
        raise RejectedFile(f"the file contains NUL bytes, so it is not plain text; allowed: {ALLOWED}")
    if not text.utf8:
        raise RejectedFile(f"unrecognised file type (not PDF/PNG/JPEG/office, and not UTF-8 text); "
                           f"allowed: {ALLOWED}")
    lowered = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if lowered.startswith(b"<") and any(marker in lowered for marker in HTML_MARKERS):
        # HTML, SVG or XML could run script if a browser ever rendered it inline.
        raise RejectedFile(f"HTML/XML/script content is not accepted as evidence; allowed: {ALLOWED}")
    return _agree("text/csv" if ext == "csv" else "text/plain", ext)


def _agree(content_type: str, ext: str) -> str:
    if ext and ext not in EXTENSIONS[content_type]:
        raise RejectedFile(f"the name ends in .{ext} but the content is {content_type}; "
                           f"rename the file or upload the right one")
    return content_type


def _office(ext: str, path: Path) -> str:
    if ext not in OFFICE:
        raise RejectedFile(f"ZIP files are accepted only as office documents "
                           f"(.{', .'.join(OFFICE)}); allowed: {ALLOWED}")
    content_type, member = OFFICE[ext]
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())  # the central directory only: nothing is decompressed
    except (zipfile.BadZipFile, OSError):
        raise RejectedFile(f"the .{ext} file is not a valid office document (damaged ZIP)") from None
    if member not in names:
        raise RejectedFile(f"the .{ext} file is a ZIP archive but not an office document (no {member})")
    return content_type


def _scan(path: Path) -> None:
    command = os.environ.get(SCAN_ENV, "").strip()
    if not command:
        return
    args = shlex.split(command)
    if "{path}" in command:
        args = [a.replace("{path}", str(path)) for a in args]
    else:
        args.append(str(path))
    try:
        proc = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, timeout=SCAN_TIMEOUT_S,
                              check=False)
    except subprocess.TimeoutExpired:
        raise ScannerUnavailable(f"the virus scanner did not finish within {SCAN_TIMEOUT_S} s") from None
    except OSError as exc:
        raise ScannerUnavailable(f"the virus scanner could not run: {exc.strerror or exc}") from None
    if proc.returncode != 0:
        raise InvalidInput("the file was rejected by the virus scanner")


def sanitise_filename(raw: str) -> str:
    """A display name safe anywhere: the last path component, letters, digits and a few marks only."""
    name = unicodedata.normalize("NFC", raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    kept = "".join(ch if ch.isalnum() or ch in " ._-()[]+,=@" else "_" for ch in name)
    kept = " ".join(kept.split()).lstrip(". ")  # no hidden files, no "..", no leading blanks
    if not kept:
        kept = "evidence"
    if len(kept.encode()) > MAX_NAME:
        stem, dot, ext = kept.rpartition(".")
        if not dot or len(ext) > 10:
            stem, ext = kept, ""
        suffix = f".{ext}" if ext else ""
        while len((stem + suffix).encode()) > MAX_NAME:
            stem = stem[:-1]
        kept = stem + suffix
    return kept
