"""Shared pieces of the auth parsers: field lists, caps, and small value helpers."""

from __future__ import annotations

import functools
import ipaddress
import re
from typing import Any

AUTH_TYPES = ("auth.failure", "auth.success", "auth.sudo", "auth.su")
AUTH_FIELDS: tuple[str, ...] = (
    "action", "outcome", "user", "source_ip", "source_port", "method", "process", "pid", "target_user",
    "command", "tty", "cwd", "host", "log_ts", "count", "source", "raw",
)
ACCOUNT_FIELDS: tuple[str, ...] = (
    "action", "user", "group", "uid", "gid", "home", "shell", "process", "pid", "host", "log_ts", "source",
    "raw",
)
FIELDS: dict[str, tuple[str, ...]] = {t: AUTH_FIELDS for t in AUTH_TYPES} | {"account.change": ACCOUNT_FIELDS}

# Must match the collector's caps (collector/ingest/items/auth.py): an over-long value would get the
# whole batch refused, so attacker-chosen text (user names, commands) is cut here, not there.
MAX_STR = 256
MAX_TEXT = 4096
_TEXT_FIELDS = frozenset({"raw", "command", "cwd"})
MAX_COUNT = 1_000_000

# A parser returns (item type, data) for an event, or a reason string for a line it ignores.
Parsed = tuple[str, dict[str, Any]] | str
NOISE = "noise"  # a known line that carries no event (session opened, server listening ...)


def clean(data: dict[str, Any]) -> dict[str, Any]:
    """Drop empty values and cap every string to what the collector accepts."""
    out = {k: v for k, v in data.items() if v is not None and v != ""}
    for key, value in out.items():
        if type(value) is str:
            if len(value) > MAX_STR:
                value = out[key] = value[: MAX_TEXT if key in _TEXT_FIELDS else MAX_STR]
            if "\x00" in value:  # the collector refuses NUL (PostgreSQL cannot store it): one line, not a batch
                out[key] = value.replace("\x00", "\ufffd")
    return out


_IPV4 = re.compile(r"(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)")


def ip_or_none(text: str | None) -> str | None:
    """The address in canonical form when ``text`` is an IPv4/IPv6 address (sshd may log a name)."""
    if not text:
        return None
    if _IPV4.fullmatch(text):
        return text  # already canonical; the common case, and ipaddress is slow
    return _parse_ip(text)


@functools.lru_cache(maxsize=4096)  # brute force repeats the same few sources thousands of times
def _parse_ip(text: str) -> str | None:
    try:
        address = ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None
    # A dual-stack listener logs IPv4 clients as ::ffff:a.b.c.d; report them as the IPv4 they are.
    mapped = getattr(address, "ipv4_mapped", None)
    return str(mapped or address)


def int_or_none(text: str | None, limit: int = 2**32) -> int | None:
    """An integer field, or None when absent or absurd."""
    # ASCII only: str.isdigit() is also true for "²", which int() refuses.
    if text is None or not text.isascii() or not text.isdigit() or len(text) > 10:
        return None
    value = int(text)
    return value if value <= limit else None


_KV = re.compile(r"(\w+)=(\S*)")


def pam_fields(text: str) -> dict[str, str]:
    """``logname= uid=0 ... rhost=1.2.3.4  user=root`` as a dict (empty values kept as '')."""
    return dict(_KV.findall(text))
