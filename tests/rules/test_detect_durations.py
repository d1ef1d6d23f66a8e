"""Durations: integer seconds or <n>s|m|h|d; everything else is refused."""

from __future__ import annotations

import pytest

from rules.detect.durations import parse_duration


@pytest.mark.parametrize(("raw", "seconds"), [
    (0, 0), (45, 45), ("45", 45), ("45s", 45), ("2m", 120), ("3h", 10800), ("1d", 86400), (" 10m ", 600),
])
def test_accepted(raw, seconds):
    assert parse_duration(raw) == seconds


@pytest.mark.parametrize("raw", [True, False, -1, "-5s", "2 minutes", "1w", "1.5h", "", None, 1.5, [60], "m", "1y"])
def test_refused(raw):
    with pytest.raises(ValueError, match="duration"):
        parse_duration(raw)


def test_absurdly_long_window_is_refused():
    with pytest.raises(ValueError, match="366 days"):
        parse_duration("400d")
