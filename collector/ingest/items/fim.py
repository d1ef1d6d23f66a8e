"""Validator for ``file.change`` (file integrity monitoring, agent/collectors/fim)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, Field, StringConstraints

from collector.ingest.fields import Count, Hash, Str, Strict

Path = Annotated[str, StringConstraints(min_length=1, max_length=4096)]
Value = Annotated[str, StringConstraints(max_length=4096)] | int | float | None
Attribute = Literal["size", "mode", "uid", "gid", "mtime", "inode", "sha256", "kind", "target"]
Mode = Annotated[str, StringConstraints(pattern=r"^[0-7]{4,6}$")]


class AttributeChange(Strict):
    old: Value = None
    new: Value = None


class FileChange(Strict):
    path: Path
    action: Literal["created", "modified", "deleted", "attributes", "summary"]
    kind: Literal["file", "dir", "symlink", "other"] | None = None
    changed_attributes: Annotated[dict[Attribute, AttributeChange], Field(max_length=9)] = {}
    size: Count | None = None
    mode: Mode | None = None
    uid: Count | None = None
    gid: Count | None = None
    mtime: AwareDatetime | None = None
    inode: Count | None = None
    sha256: Hash | None = None
    target: Path | None = None
    web_root: bool = False
    scan: Literal["realtime", "rescan"]
    count: Count | None = None
    sample_paths: Annotated[list[Path], Field(max_length=20)] = []
    reason: Str | None = None


ITEM_MODELS = {"file.change": FileChange}
