"""Windows: installed hotfixes (``Get-HotFix``) and pending updates (Windows Update Agent).

Both come from PowerShell as JSON. ``ConvertTo-Json`` renders one object as an object and several
as an array, and Windows PowerShell 5.1 renders dates as ``{"value": "/Date(ms)/", "DateTime": ...}``
while PowerShell 7 writes ISO strings; the parsers accept all of these.

Pending updates use this shape (``WUA_SCRIPT`` produces it), one object per update::

    {"Title": "2024-05 Cumulative Update ... (KB5037765)", "KBArticleIDs": ["5037765"],
     "MsrcSeverity": "Critical", "Categories": ["Security Updates"], "RebootRequired": false}

An update is a security one when its categories include "Security Updates" or Microsoft rated it
(``MsrcSeverity`` set). The searcher reads the local Windows Update state; it may contact the
update service, which is what Windows itself does daily.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import ClassVar

from agent.collectors.base import Collector
from agent.collectors.patches._common import (
    MAX_PENDING,
    PATCH_FIELDS,
    CommandResult,
    Runner,
    clip,
    empty_status,
    failure,
    pending_row,
    run_command,
)
from agent.wire import Item

POWERSHELL = ["powershell.exe", "-NoProfile", "-NonInteractive", "-Command"]
HOTFIX_SCRIPT = "Get-HotFix | Select-Object HotFixID,Description,InstalledOn | ConvertTo-Json -Depth 3"
WUA_SCRIPT = (
    "$r = (New-Object -ComObject Microsoft.Update.Session).CreateUpdateSearcher()"
    ".Search(\"IsInstalled=0 and IsHidden=0\"); "
    "@($r.Updates | ForEach-Object { [pscustomobject]@{ Title=$_.Title; KBArticleIDs=@($_.KBArticleIDs); "
    "MsrcSeverity=$_.MsrcSeverity; Categories=@($_.Categories | ForEach-Object { $_.Name }); "
    "RebootRequired=$_.RebootRequired } }) | ConvertTo-Json -Depth 4"
)
REBOOT_SCRIPT = (
    "Test-Path 'HKLM:\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\WindowsUpdate\\Auto Update\\RebootRequired'"
)
MS_DATE = re.compile(r"/Date\((-?\d+)")


def _objects(text: str) -> list[dict]:
    """``ConvertTo-Json`` output as a list of objects (one object, an array, or nothing)."""
    if not text.strip():
        return []
    data = json.loads(text)
    items = data if isinstance(data, list) else [data]
    return [i for i in items if isinstance(i, dict)]


def _as_list(value: object) -> list[str]:
    """A JSON value PowerShell may have unrolled: one string instead of a one-element array."""
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    return [str(i).strip() for i in items if i is not None and str(i).strip()]


def installed_on(value: object) -> str | None:
    """A hotfix's InstalledOn in any of PowerShell's renderings, as ISO 8601 (date precision)."""
    if isinstance(value, dict):
        value = value.get("value") or value.get("DateTime")
    if not isinstance(value, str) or not value.strip():
        return None
    match = MS_DATE.search(value)
    if match:
        return datetime.fromtimestamp(int(match[1]) / 1000, UTC).date().isoformat()
    try:  # PowerShell 7: "2024-05-14T00:00:00"
        return datetime.fromisoformat(value.strip()).date().isoformat()
    except ValueError:
        pass
    for fmt in ("%m/%d/%Y %H:%M:%S", "%m/%d/%Y", "%A, %B %d, %Y %I:%M:%S %p"):
        try:  # Get-HotFix's own text forms (en-US)
            return datetime.strptime(value.strip(), fmt).date().isoformat()
        except ValueError:
            continue
    return None


def parse_hotfixes(text: str) -> list[dict]:
    """``Get-HotFix | ConvertTo-Json`` -> hotfix rows {id, installed_on, description}."""
    rows = []
    for obj in _objects(text):
        hotfix_id = obj.get("HotFixID") or obj.get("HotfixID")
        if hotfix_id:
            rows.append({"id": clip(str(hotfix_id)), "installed_on": installed_on(obj.get("InstalledOn")),
                         "description": clip(str(obj["Description"])) if obj.get("Description") else None})
    return rows


def parse_wua_pending(text: str) -> tuple[list[dict], bool]:
    """WUA pending updates (shape in the module docstring) -> pending rows, any-needs-reboot."""
    rows, reboot = [], False
    for obj in _objects(text):
        title = str(obj.get("Title") or "").strip()
        kbs = [f"KB{k}" for k in _as_list(obj.get("KBArticleIDs"))]
        if not title and not kbs:
            continue
        categories = _as_list(obj.get("Categories"))
        security = "Security Updates" in categories or bool(obj.get("MsrcSeverity"))
        rows.append(pending_row(kbs[0] if kbs else title, None, origin=title or None, security=security))
        reboot = reboot or bool(obj.get("RebootRequired"))
    return rows, reboot


class WindowsPatchCollector(Collector):
    """``patch.status`` on Windows; reported "unsupported" by the base class anywhere else."""

    name = "patches_windows"
    platforms: ClassVar[frozenset[str]] = frozenset({"windows"})
    fields: ClassVar[dict[str, tuple[str, ...]]] = {"patch.status": PATCH_FIELDS}

    def __init__(self, *, timeout_s: float = 300.0, runner: Runner = run_command) -> None:
        super().__init__()
        self.timeout_s, self.runner = timeout_s, runner

    def _powershell(self, script: str) -> CommandResult:
        return self.runner([*POWERSHELL, script], self.timeout_s)

    def _json(self, label: str, script: str, parse: Callable, errors: list[str]):
        """Run one script and parse its JSON; None (and a line in ``errors``) when either fails."""
        result = self._powershell(script)
        if result.error or result.returncode != 0:
            errors.append(failure(label, result))
            return None
        try:
            return parse(result.stdout)
        except (ValueError, TypeError, AttributeError) as exc:
            errors.append(clip(f"{label}: unreadable JSON: {exc}"))
            return None

    def collect(self) -> Iterable[Item]:
        data, errors = empty_status("windows"), []
        hotfixes = self._json("Get-HotFix", HOTFIX_SCRIPT, parse_hotfixes, errors)
        pending, wua_reboot = self._json("Windows Update search", WUA_SCRIPT, parse_wua_pending, errors) or ([], False)
        # The servicing stack sets this key when an installed update waits for a restart.
        flag = self._powershell(REBOOT_SCRIPT).stdout.strip().lower() == "true"
        data.update(hotfixes=(hotfixes or [])[:MAX_PENDING], pending=pending[:MAX_PENDING],
                    pending_count=len(pending), security_count=sum(r["security"] for r in pending),
                    reboot_required=wua_reboot or flag, errors=errors)
        yield Item("patch.status", data)
