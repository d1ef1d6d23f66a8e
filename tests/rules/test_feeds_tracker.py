"""Debian security tracker JSON: per-release states, CVE merging across packages, and errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rules.feeds import Affected, FeedError, Vulnerability, parse_feed
from rules.feeds.tracker import distro_key, release_state

FIXTURE = Path(__file__).parent / "fixtures" / "feeds" / "debian-tracker.json"


@pytest.fixture(scope="module")
def feed():
    return parse_feed(FIXTURE)


def rows(feed, vid):
    vuln = next(v for v in feed.vulnerabilities if v.id == vid)
    return {(a.package, a.distro): a for a in vuln.affected}


def test_identity_and_one_vulnerability_per_cve(feed):
    assert (feed.kind, feed.source, feed.version) == ("debian-tracker", "debian-security-tracker", "")
    assert [v.id for v in feed.vulnerabilities] == ["CVE-2024-5535", "CVE-2024-2511", "CVE-2024-2961",
                                                    "CVE-2024-1737", "CVE-2023-1972", "CVE-2024-26581",
                                                    "TEMP-0000000-1B8C34"]
    assert feed.skipped == {}


def test_cve_merged_across_source_packages_exactly(feed):
    vuln = feed.vulnerabilities[0]
    assert vuln == Vulnerability(
        id="CVE-2024-5535",
        aliases=(),
        summary="Issue summary: Calling the OpenSSL API function SSL_select_next_proto with an e ...",
        published=None,
        modified=None,
        cvss_vectors=(),
        severity=None,              # "not yet assigned" everywhere; nodejs' "unimportant" is not-affected
        affected=(
            Affected("debian:12", "deb", "openssl", None, "3.0.15-1~deb12u1", None, "fixed", "not yet assigned"),
            Affected("debian:11", "deb", "openssl", None, "1.1.1w-0+deb11u2", None, "fixed", "not yet assigned"),
            Affected("debian:13", "deb", "openssl", None, "3.3.2-1", None, "fixed", "not yet assigned"),
            Affected("debian:sid", "deb", "openssl", None, "3.3.2-1", None, "fixed", "not yet assigned"),
            Affected("debian:12", "deb", "nodejs", None, None, None, "not-affected", "unimportant"),
        ),
        references=("https://security-tracker.debian.org/tracker/CVE-2024-5535",),
    )


@pytest.mark.parametrize(("vid", "package", "distro", "status", "fixed", "urgency"), [
    ("CVE-2024-2511", "openssl", "debian:12", "no-dsa", None, "low"),
    ("CVE-2024-2511", "openssl", "debian:11", "postponed", None, "low"),          # "low**" normalized
    ("CVE-2024-2511", "openssl", "debian:sid", "fixed", "3.2.1-3", "low"),
    ("CVE-2024-2961", "glibc", "debian:12", "fixed", "2.36-9+deb12u7", "high"),   # not the +deb12u10 in the repo
    ("CVE-2024-2961", "glibc", "debian:11", "fixed", "2.31-13+deb11u10", "high"),
    ("CVE-2024-2961", "glibc", "debian:10", "end-of-life", None, "end-of-life"),
    ("CVE-2024-1737", "bind9", "debian:12", "fixed", "1:9.18.28-1~deb12u1", "not yet assigned"),  # epoch + tilde
    ("CVE-2024-1737", "bind9", "debian:11", "ignored", None, "not yet assigned"),
    ("CVE-2024-1737", "bind9", "debian:duke", "undetermined", None, "not yet assigned"),  # unknown codename kept
    ("CVE-2023-1972", "binutils", "debian:12", "unimportant", None, "unimportant"),
    ("CVE-2023-1972", "binutils", "debian:14", "fixed", "2.41-1", "unimportant"),
    ("CVE-2024-26581", "linux", "debian:11", "open", None, "not yet assigned"),
    ("CVE-2024-26581", "linux", "debian:13", "undetermined", None, "not yet assigned"),
    ("TEMP-0000000-1B8C34", "linux", "debian:sid", "open", None, "medium"),
])
def test_release_states(feed, vid, package, distro, status, fixed, urgency):
    row = rows(feed, vid)[(package, distro)]
    assert (row.status, row.fixed, row.urgency, row.ecosystem, row.introduced) == (status, fixed, urgency, "deb", None)


def test_severity_is_the_worst_urgency_and_bugs_become_references(feed):
    sev = {v.id: v.severity for v in feed.vulnerabilities}
    assert sev["CVE-2024-2961"] == "high"
    assert sev["CVE-2024-2511"] == "low"
    assert sev["CVE-2023-1972"] == "unimportant"
    assert sev["CVE-2024-1737"] is None
    refs = next(v.references for v in feed.vulnerabilities if v.id == "CVE-2024-2511")
    assert refs == ("https://security-tracker.debian.org/tracker/CVE-2024-2511", "https://bugs.debian.org/1068658")


@pytest.mark.parametrize(("args", "state"), [
    (("resolved", "1.0-1", None, False, None), "fixed"),
    (("resolved", "0", "unimportant", False, None), "not-affected"),
    (("resolved", None, None, False, None), "undetermined"),
    (("open", None, "end-of-life", True, "postponed"), "end-of-life"),
    (("open", None, "unimportant", False, None), "unimportant"),
    (("open", None, "low", True, "postponed"), "postponed"),
    (("open", None, "low", True, "ignored"), "ignored"),
    (("open", None, "low", True, ""), "no-dsa"),
    (("open", None, "medium", False, None), "open"),
    (("undetermined", None, None, False, None), "undetermined"),
])
def test_release_state(args, state):
    assert release_state(*args) == state


def test_codenames():
    assert [distro_key(c) for c in ("buster", "bullseye", "bookworm", "trixie", "forky", "sid", "Duke")] == [
        "debian:10", "debian:11", "debian:12", "debian:13", "debian:14", "debian:sid", "debian:duke"]


def test_progress_per_package(tmp_path):
    data = {f"pkg{i}": {f"CVE-2024-{10000 + i}": {"releases": {"bookworm": {"status": "open"}}}}
            for i in range(2300)}
    path = tmp_path / "tracker.json"
    path.write_text(json.dumps(data))
    calls = []
    result = parse_feed(path, on_progress=lambda d, t: calls.append((d, t)))
    assert len(result.vulnerabilities) == 2300
    assert calls == [(1000, 2300), (2000, 2300), (2300, 2300)]


def release(**fields):
    return {"pkg": {"CVE-2024-1234": {"releases": {"bookworm": {"status": "open", **fields}}}}}


@pytest.mark.parametrize(("data", "where", "reason"), [
    (release(status="fixed"), "pkg.CVE-2024-1234.releases.bookworm.status", "expected one of"),
    (release(status=None), "pkg.CVE-2024-1234.releases.bookworm.status", "required"),
    (release(fixed_version=3), "pkg.CVE-2024-1234.releases.bookworm.fixed_version",
     "expected a string, got an integer"),
    (release(fixed_version="1" * 256), "pkg.CVE-2024-1234.releases.bookworm.fixed_version", "longer than 255"),
    (release(repositories={"bookworm": None}), "pkg.CVE-2024-1234.releases.bookworm.repositories.bookworm",
     "expected a string, got null"),
    (release(urgency=["low"]), "pkg.CVE-2024-1234.releases.bookworm.urgency", "expected a string, got a list"),
    ({"pkg": {"CVE-2024-1234": {"description": "d"}}}, "pkg.CVE-2024-1234.releases", "required"),
    ({"pkg": {"CVE-2024-1234": {"debianbug": "1068658", "releases": {}}}}, "pkg.CVE-2024-1234.debianbug",
     "expected an integer bug number"),
    ({"pkg": {"CVE-2024-1234": {"releases": []}}}, "pkg.CVE-2024-1234.releases", "expected an object, got a list"),
    ({"pkg": {"CVE-2024-1234": {"releases": {}}}, "bad": ["CVE-1"]}, "bad", "expected an object of CVE ids"),
    ({"pkg": {"X" * 129: {"releases": {}}}}, "pkg." + "X" * 40, "ids are 1 to 128 characters"),
    ({"p" * 256: {"CVE-2024-1": {"releases": {}}}}, "p" * 40, "package names are 1 to 255 characters"),
    ({"pkg": {"CVE-2024-1": {"releases": {"b" * 65: {"status": "open"}}}}}, "pkg.CVE-2024-1.releases." + "b" * 65,
     "release codenames are 1 to 64 characters"),
])
def test_invalid_entries(tmp_path, data, where, reason):
    path = tmp_path / "tracker.json"
    path.write_text(json.dumps(data))
    with pytest.raises(FeedError) as err:
        parse_feed(path, kind="debian-tracker")
    assert str(err.value).startswith(f"{path}: {where}: {reason}"), str(err.value)


def test_not_an_object(tmp_path):
    path = tmp_path / "tracker.json"
    path.write_text("[1, 2]")
    with pytest.raises(FeedError, match=r"tracker\.json: the tracker JSON is an object of source packages"):
        parse_feed(path, kind="debian-tracker")


def test_truncated_file(tmp_path):
    path = tmp_path / "tracker.json"
    path.write_text(FIXTURE.read_text()[:5000])
    with pytest.raises(FeedError, match=rf"{path}: line \d+ column \d+: invalid JSON"):
        parse_feed(path, kind="debian-tracker")


def test_many_problems_in_one_message(tmp_path):
    data = {f"pkg{i}": {"CVE-2024-1234": {"releases": {"bookworm": {"status": "broken"}}}} for i in range(5)}
    path = tmp_path / "tracker.json"
    path.write_text(json.dumps(data))
    with pytest.raises(FeedError) as err:
        parse_feed(path)
    assert str(err.value).startswith(f"{path}: 5 problems:")
    assert err.value.problems[4].startswith(f"{path}: pkg4.CVE-2024-1234.releases.bookworm.status: expected one of")
