"""CVSS scoring: published scores for well-known vectors, version detection, invalid vectors, best_score."""

from __future__ import annotations

import dataclasses

import pytest

from rules.cvss import CvssScore, InvalidVector, best_score, score

V31_CRITICAL = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"
LOG4SHELL = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H"
V2_HIGH = "AV:N/AC:L/Au:N/C:P/I:P/A:P"
V4_CRITICAL = "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"


@pytest.mark.parametrize(("vector", "version", "base", "severity"), [
    (V31_CRITICAL, "3.1", 9.8, "critical"),
    (LOG4SHELL, "3.1", 10.0, "critical"),  # CVE-2021-44228
    ("CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "3.0", 9.8, "critical"),
    ("CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:N", "3.1", 5.9, "medium"),
    ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N", "3.1", 7.5, "high"),  # CVE-2014-0160 Heartbleed
    ("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", "3.1", 7.8, "high"),  # CVE-2021-4034 PwnKit
    ("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", "3.1", 6.1, "medium"),  # the classic reflected XSS
    ("CVSS:3.1/AV:P/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N", "3.1", 1.6, "low"),
    ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", "3.1", 0.0, "none"),
    ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/E:U/RL:O/RC:C", "3.1", 9.8, "critical"),  # base, not temporal
    (V2_HIGH, "2.0", 7.5, "high"),
    ("AV:N/AC:L/Au:N/C:C/I:C/A:C", "2.0", 10.0, "high"),
    ("AV:N/AC:M/Au:N/C:P/I:N/A:N", "2.0", 4.3, "medium"),
    ("AV:L/AC:L/Au:N/C:P/I:N/A:N", "2.0", 2.1, "low"),
    ("AV:N/AC:L/Au:N/C:N/I:N/A:N", "2.0", 0.0, "low"),
    (V4_CRITICAL, "4.0", 9.3, "critical"),
    ("CVSS:4.0/AV:L/AC:L/AT:N/PR:L/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N", "4.0", 8.5, "high"),
    ("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:L/VI:N/VA:N/SC:N/SI:N/SA:N", "4.0", 6.9, "medium"),
    ("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:N/SC:N/SI:N/SA:N", "4.0", 0.0, "none"),
    (V4_CRITICAL + "/E:U", "4.0", 9.3, "critical"),  # CVSS-B; the library's CVSS-BT for this vector is 8.1
])
def test_published_scores(vector, version, base, severity):
    result = score(vector)
    assert result == CvssScore(version=version, vector=vector, base_score=base, severity=severity)


def test_score_is_frozen_and_whitespace_is_trimmed():
    result = score(f"  {V31_CRITICAL}\n")
    assert result.vector == V31_CRITICAL
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.base_score = 1.0  # type: ignore[misc]


@pytest.mark.parametrize(("vector", "reason"), [
    ("", "empty"),
    ("   ", "empty"),
    ("garbage", "garbage"),
    ("CVSS:3.1/AV:N", "Missing mandatory metrics"),
    ("CVSS:3.1/AV:X/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 'Unknown value "X"'),
    ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/AV:L", "Duplicate metric"),
    ("CVSS:3.2/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "unsupported CVSS version"),
    ("CVSS:2.0/AV:N/AC:L/Au:N/C:P/I:P/A:P", "unsupported CVSS version"),
    ("AV:N/AC:L/Au:N/C:P/I:P", "Missing mandatory"),
    ("AV:N/AC:L/Au:N/C:P/I:P/A:Q", "A:Q"),
    ("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N", "Missing mandatory metrics"),
    ("CVSS:4.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "metric"),
])
def test_invalid_vectors_are_rejected_with_the_reason(vector, reason):
    with pytest.raises(InvalidVector) as caught:
        score(vector)
    assert reason in str(caught.value)
    assert repr(vector.strip() or vector) in str(caught.value) or repr(vector) in str(caught.value)


def test_non_string_vector_is_invalid():
    with pytest.raises(InvalidVector, match="expected a string"):
        score(None)  # type: ignore[arg-type]


def test_best_score_prefers_the_newest_version():
    assert best_score([V2_HIGH, V31_CRITICAL, V4_CRITICAL]).version == "4.0"
    assert best_score([V4_CRITICAL, "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", V2_HIGH]).version == "4.0"
    assert best_score(["CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", V2_HIGH, V31_CRITICAL]).version == "3.1"
    low_v31 = "CVSS:3.1/AV:P/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N"
    # the newer version wins even with a lower score
    assert best_score(["AV:N/AC:L/Au:N/C:C/I:C/A:C", low_v31]) == score(low_v31)


def test_best_score_skips_invalid_and_breaks_ties_upwards():
    assert best_score(["garbage", "CVSS:3.1/AV:N", V2_HIGH]) == score(V2_HIGH)
    assert best_score([V31_CRITICAL, LOG4SHELL, "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N"]) == score(LOG4SHELL)
    assert best_score(iter([V31_CRITICAL])) == score(V31_CRITICAL)


def test_best_score_none_when_nothing_valid():
    assert best_score([]) is None
    assert best_score(["", "nope", "CVSS:9.9/AV:N"]) is None
