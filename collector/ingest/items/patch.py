"""Validator for ``patch.status``: pending updates, kernel and reboot state of one host."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, Field

from collector.ingest.fields import Count, Name, Str, Strict

MAX_PENDING = 20_000


class PendingUpdate(Strict):
    name: Name
    installed_version: Str | None = None
    candidate_version: Str | None = None
    arch: Str | None = None
    origin: Str | None = None  # apt archive(s), dnf repo id, or the Windows update title
    security: bool = False


class Hotfix(Strict):
    id: Name
    installed_on: Str | None = None
    description: Str | None = None


class PatchStatus(Strict):
    manager: Literal["apt", "dnf", "yum", "windows", "none"]
    pending: Annotated[list[PendingUpdate], Field(max_length=MAX_PENDING)] = []
    pending_count: Count = 0  # before the list cap
    security_count: Count = 0
    held_back: Annotated[list[Str], Field(max_length=MAX_PENDING)] = []
    lists_age_s: float | None = Field(default=None, ge=0)
    last_update: AwareDatetime | None = None
    last_upgrade: AwareDatetime | None = None
    running_kernel: Str | None = None
    newest_kernel: Str | None = None
    kernel_outdated: bool | None = None
    reboot_required: bool = False
    reboot_packages: Annotated[list[Str], Field(max_length=1_000)] = []
    hotfixes: Annotated[list[Hotfix], Field(max_length=MAX_PENDING)] = []
    errors: Annotated[list[Str], Field(max_length=50)] = []


ITEM_MODELS = {"patch.status": PatchStatus}
