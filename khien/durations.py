"""Human durations for command options: ``90d``, ``12h``, ``30m``, ``45s``, ``2w``."""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    """Parse ``<number><s|m|h|d|w>``; ValueError with the accepted form otherwise."""
    match = re.fullmatch(r"\s*(\d{1,6})\s*([smhdw])\s*", text or "")
    if not match:
        raise ValueError(f"invalid duration {text!r} (use e.g. 7d, 12h, 30m)")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
