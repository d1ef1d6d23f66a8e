"""Small file helpers shared by the inventory sections: read under a root, never raise on absence."""

from __future__ import annotations

from pathlib import Path

MAX_TEXT = 256  # the collector caps every string at 256 characters


def under(root: Path, path: str) -> Path:
    """``path`` (absolute, e.g. ``/etc/passwd``) resolved inside ``root`` so tests can use fixture trees."""
    return root / path.lstrip("/")


def read_text(root: Path, path: str) -> str | None:
    """Whole file as text, or None when it is missing or unreadable (e.g. root-only DMI files)."""
    try:
        return under(root, path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def read_value(root: Path, path: str) -> str | None:
    """First line of a one-value file (sysfs style), stripped; None when absent, unreadable or empty."""
    text = read_text(root, path)
    if text is None:
        return None
    value = text.strip().splitlines()[0].strip() if text.strip() else ""
    return clip(value) if value else None


def clip(value: str | None) -> str | None:
    """Cap a string at the collector's limit; a longer string would reject the whole batch."""
    return value[:MAX_TEXT] if value is not None else None


def to_int(value: str | None) -> int | None:
    """int(value) for numeric text, None for empty or non-numeric fields."""
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None
