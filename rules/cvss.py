"""CVSS vector scoring (v2, v3.0, v3.1, v4.0) through the ``cvss`` library, and picking one vector per CVE.

Advisories carry vectors, not always scores, and a CVE often has several (NVD v2 + v3.1, a CNA's v4.0);
findings need one number and one severity band. ``score`` recognises the version from the prefix
(``CVSS:3.1/``, ``CVSS:4.0/``; a bare ``AV:N/AC:L/Au:N/...`` is v2) and lets the FIRST-conformant ``cvss``
library do the arithmetic; ``best_score`` prefers the newest version present. ``base_score`` is always the
base score: v3 vectors with temporal/environmental metrics report their base score, and v4 vectors are
scored on their base metrics (CVSS-B) even when threat/environmental metrics are present.
Pure: stdlib and ``cvss`` only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from cvss import CVSS2, CVSS3, CVSS4, CVSSError

Severity = Literal["none", "low", "medium", "high", "critical"]

VERSION_RANK = {"2.0": 0, "3.0": 1, "3.1": 2, "4.0": 3}
V3_PREFIXES = {"CVSS:3.0/": "3.0", "CVSS:3.1/": "3.1"}
V4_PREFIX = "CVSS:4.0/"
V4_BASE_METRICS = ("AV", "AC", "AT", "PR", "UI", "VC", "VI", "VA", "SC", "SI", "SA")


class InvalidVector(ValueError):
    """A CVSS vector the ``cvss`` library cannot score; the message names the vector and the reason."""

    def __init__(self, vector: str, reason: str) -> None:
        shown = vector if len(vector) <= 200 else vector[:200] + "…"
        super().__init__(f"invalid CVSS vector {shown!r}: {reason}")
        self.vector = vector
        self.reason = reason


@dataclass(frozen=True, slots=True)
class CvssScore:
    """One scored vector."""

    version: str  # "2.0", "3.0", "3.1", "4.0"
    vector: str
    base_score: float
    severity: Severity


def _v2_severity(base: float) -> Severity:
    """NVD's CVSS v2 bands: low 0.0-3.9, medium 4.0-6.9, high 7.0-10.0."""
    if base >= 7.0:
        return "high"
    if base >= 4.0:
        return "medium"
    return "low"


def _band(base: float) -> Severity:
    """The v3/v4 qualitative rating scale (identical in both specifications)."""
    if base == 0.0:
        return "none"
    if base < 4.0:
        return "low"
    if base < 7.0:
        return "medium"
    if base < 9.0:
        return "high"
    return "critical"


def _v4_base_only(vector: str) -> str:
    metrics = dict(part.split(":", 1) for part in vector[len(V4_PREFIX):].split("/"))
    return V4_PREFIX + "/".join(f"{name}:{metrics[name]}" for name in V4_BASE_METRICS)


@lru_cache(maxsize=8192)
def _score(vector: str) -> CvssScore:
    try:
        if vector.startswith(V4_PREFIX):
            parsed4 = CVSS4(vector)
            base = float(CVSS4(_v4_base_only(vector)).base_score)
            return CvssScore("4.0", parsed4.clean_vector(), base, _band(base))
        for prefix, version in V3_PREFIXES.items():
            if vector.startswith(prefix):
                parsed3 = CVSS3(vector)
                base = float(parsed3.scores()[0])
                return CvssScore(version, parsed3.clean_vector(), base, _band(base))
        if vector.startswith("CVSS:"):
            raise InvalidVector(vector, "unsupported CVSS version prefix (expected CVSS:3.0/, CVSS:3.1/ or CVSS:4.0/)")
        parsed2 = CVSS2(vector)
        base = float(parsed2.scores()[0])
        return CvssScore("2.0", parsed2.clean_vector(), base, _v2_severity(base))
    except CVSSError as exc:
        raise InvalidVector(vector, str(exc) or type(exc).__name__) from None


def score(vector: str) -> CvssScore:
    """Score one vector; :class:`InvalidVector` if it is malformed, incomplete or of an unknown version."""
    if not isinstance(vector, str):
        raise InvalidVector(repr(vector), f"expected a string, got {type(vector).__name__}")
    text = vector.strip()
    if not text:
        raise InvalidVector(vector, "empty vector")
    return _score(text)


def best_score(vectors: Iterable[str]) -> CvssScore | None:
    """The score of the newest CVSS version present (4.0 > 3.1 > 3.0 > 2.0); invalid vectors are skipped.

    Several valid vectors of that version (NVD's and a CNA's) resolve to the highest base score. None when
    no vector is valid.
    """
    best: CvssScore | None = None
    for vector in vectors:
        try:
            current = score(vector)
        except InvalidVector:
            continue
        if best is None or (VERSION_RANK[current.version], current.base_score) > (
                VERSION_RANK[best.version], best.base_score):
            best = current
    return best
