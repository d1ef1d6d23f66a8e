"""sudo rules that matter for compliance: NOPASSWD entries, unrestricted ALL rules, risky Defaults.

/etc/sudoers is read with its ``@include``/``#include`` files and ``@includedir``/``#includedir``
directories (skipping names with ``.`` or ending in ``~``, as sudo does), continuation lines joined.

Keys of the result:
  available: bool (/etc/sudoers read); files: [files read]; errors: [str] (unreadable files, loops)
  nopasswd: [{file, line, principal, rule}] (rule text clipped); nopasswd_count: int
  all_commands: [{file, line, principal}] — rules granting ALL commands (with or without a password)
  defaults: [Defaults lines]; no_authenticate: bool (``Defaults !authenticate``);
  use_pty, logfile: bool (those Defaults are set)
"""

from __future__ import annotations

import re
from pathlib import Path

from agent.collectors.facts._common import Run, clip, glob_under, read_file

MAX_RULES = 500
MAX_DEPTH = 8
INCLUDE = re.compile(r"^[@#](include|includedir)\s+(.+)$")
ALIAS = re.compile(r"^(User|Runas|Host|Cmnd|Cmd)_Alias\s", re.IGNORECASE)
RULE = re.compile(r"^(\S+)\s+(.+?)\s*=\s*(.*)$")


def collect_sudoers(root: Path = Path("/"), run: Run | None = None) -> dict:
    """NOPASSWD and ALL rules from sudoers (see the module docstring for the keys)."""
    state = {"files": [], "errors": [], "nopasswd": [], "all_commands": [], "defaults": []}
    _read(root, "/etc/sudoers", state, [])
    if "/etc/sudoers" not in state["files"]:
        return {"available": False, "error": (state["errors"] or ["/etc/sudoers: missing"])[0], **state,
                "nopasswd_count": 0}
    defaults = state["defaults"]
    return {"available": True, **state, "nopasswd_count": len(state["nopasswd"]),
            "no_authenticate": any(re.search(r"!\s*authenticate\b", d) for d in defaults),
            "use_pty": any(re.search(r"(?<!!)\buse_pty\b", d) for d in defaults),
            "logfile": any("logfile" in d for d in defaults)}


def _read(root: Path, path: str, state: dict, stack: list[str]) -> None:
    if path in stack or len(stack) > MAX_DEPTH:
        state["errors"].append(clip(f"include loop or depth at {path}"))
        return
    text, problem = read_file(root, path)
    if text is None:
        state["errors"].append(clip(f"{path}: {problem}"))
        return
    state["files"].append(path)
    for number, line in _logical_lines(text):
        include = INCLUDE.match(line)
        if include:
            _include(root, path, include.group(1), include.group(2).strip().strip('"'), state, [*stack, path])
            continue
        line = re.sub(r"(?<!\\)#.*$", "", line).strip()
        if not line or ALIAS.match(line):
            continue
        if line.startswith("Defaults"):
            if len(state["defaults"]) < 100:
                state["defaults"].append(clip(line, 256))
            continue
        _rule(path, number, line, state)


def _include(root: Path, current: str, kind: str, target: str, state: dict, stack: list[str]) -> None:
    if not target.startswith("/"):
        target = str(Path(current).parent / target)
    if kind == "include":
        _read(root, target, state, stack)
        return
    for found in glob_under(root, target.rstrip("/") + "/*"):
        name = found.rsplit("/", 1)[-1]
        if "." not in name and not name.endswith("~"):
            _read(root, found, state, stack)


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, line) with backslash continuations joined."""
    out, buffer, start = [], "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        if not buffer:
            start = number
        if raw.rstrip().endswith("\\"):
            buffer += raw.rstrip()[:-1] + " "
            continue
        out.append((start, (buffer + raw).strip()))
        buffer = ""
    if buffer:
        out.append((start, buffer.strip()))
    return out


def _rule(path: str, number: int, line: str, state: dict) -> None:
    found = RULE.match(line)
    if not found:
        return
    principal, commands = found.group(1), found.group(3)
    if "NOPASSWD" in commands and len(state["nopasswd"]) < MAX_RULES:
        state["nopasswd"].append({"file": path, "line": number, "principal": clip(principal, 256),
                                  "rule": clip(line, 512)})
    # "(ALL) ALL", "(ALL:ALL) NOPASSWD: ALL", "ALL": the last command spec is the bare word ALL.
    last = re.sub(r"^\([^)]*\)\s*", "", commands.split(",")[-1].strip())
    last = re.sub(r"^(\w+:\s*)+", "", last).strip()
    if last == "ALL" and len(state["all_commands"]) < MAX_RULES:
        state["all_commands"].append({"file": path, "line": number, "principal": clip(principal, 256)})
