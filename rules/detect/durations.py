"""Durations in rule files: integer seconds or ``"<n>s|m|h|d"``."""

from __future__ import annotations

import re

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_PATTERN = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$")
# A window longer than a year is certainly a typo and would keep correlation state alive forever.
MAX_DURATION_S = 366 * 86400


def parse_duration(value: object) -> int:
    """Return ``value`` as whole seconds; raise ValueError with a readable reason."""
    if isinstance(value, bool):  # bool is an int subclass; `window: yes` is a mistake, not 1 second
        raise ValueError(f"duration must be seconds or '<n>s|m|h|d', not {value!r}")
    if isinstance(value, int):
        seconds = value
    elif isinstance(value, str) and (m := _PATTERN.match(value)):
        seconds = int(m.group(1)) * _UNITS[m.group(2) or "s"]
    else:
        raise ValueError(f"duration must be seconds or '<n>s|m|h|d', not {value!r}")
    if seconds < 0:
        raise ValueError(f"duration must not be negative: {value!r}")
    if seconds > MAX_DURATION_S:
        raise ValueError(f"duration longer than 366 days: {value!r}")
    return seconds
