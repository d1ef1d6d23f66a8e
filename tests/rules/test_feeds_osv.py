"""OSV feeds: a directory, single records and ecosystem zips; distro mapping, ranges, caps and errors."""

from __future__ import annotations

import json
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from rules.feeds import Affected, FeedError, Vulnerability, parse_feed
from rules.feeds import osv as osv_mod

FIXTURES = Path(__file__).parent / "fixtures" / "feeds" / "osv"


def by_id(feed):
    return {v.id: v for v in feed.vulnerabilities}


def record(vid: str = "DSA-1-1", *, ecosystem: str = "Debian:12", events=None, **extra) -> dict:
    events = events if events is not None else [{"introduced": "0"}, {"fixed": "1.0-1"}]
    data = {"id": vid, "modified": "2024-01-01T00:00:00Z",
            "affected": [{"package": {"ecosystem": ecosystem, "name": "pkg"},
                          "ranges": [{"type": "ECOSYSTEM", "events": events}]}]}
    data.update(extra)
    return data


def write(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data) if not isinstance(data, str) else data, encoding="utf-8")
    return path


def make_zip(path: Path, members: dict[str, str | bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return path


# -- the fixture directory ----------------------------------------------------------------------------------


def test_directory_keeps_supported_ecosystems_and_counts_the_rest():
    feed = parse_feed(FIXTURES)
    assert feed.kind == "osv"
    assert feed.source == "osv:AlmaLinux+Alpine+Debian+PyPI+Red Hat+Rocky Linux+Ubuntu"
    assert feed.version == "2024-10-14T08:40:35.212121Z"        # newest "modified"
    assert feed.skipped == {"ecosystem:npm": 1, "withdrawn": 1}
    assert set(by_id(feed)) == {"DSA-5764-1", "DLA-3850-1", "USN-6986-1", "UBUNTU-CVE-2024-6119",
                                "ALPINE-CVE-2024-5535", "RLSA-2024:2447", "ALSA-2024:2447", "RHSA-2024:3501",
                                "GHSA-h5c8-rqwp-cp95", "GHSA-6c5p-j8vq-pqhj"}
    assert feed.known_exploited == () and feed.warnings == ()


def test_debian_dsa_record_exactly():
    vuln = by_id(parse_feed(FIXTURES / "debian" / "DSA-5764-1.json"))["DSA-5764-1"]
    assert vuln == Vulnerability(
        id="DSA-5764-1",
        aliases=("CVE-2024-5535", "CVE-2024-6119"),          # from upstream/related
        summary="openssl - security update",
        published=datetime(2024, 9, 3, tzinfo=UTC),
        modified=datetime(2024, 9, 3, 20, 15, 51, 384426, tzinfo=UTC),
        cvss_vectors=(),
        severity=None,
        affected=(Affected("debian:12", "deb", "openssl", None, "3.0.15-1~deb12u1", None, "fixed", None),),
        references=("https://www.debian.org/security/2024/dsa-5764",
                    "https://security-tracker.debian.org/tracker/CVE-2024-5535",
                    "https://security-tracker.debian.org/tracker/CVE-2024-6119"),
    )


def test_debian_lts_urgency_from_ecosystem_specific():
    vuln = by_id(parse_feed(FIXTURES / "debian" / "DLA-3850-1.json"))["DLA-3850-1"]
    assert vuln.affected == (Affected("debian:11", "deb", "glibc", None, "2.31-13+deb11u11", None, "fixed", "high"),)
    assert vuln.severity == "high"
    assert vuln.aliases[0] == "CVE-2024-2961" and len(vuln.aliases) == 5


def test_ubuntu_releases_and_pro_collapses_to_the_release():
    vuln = by_id(parse_feed(FIXTURES / "ubuntu" / "USN-6986-1.json"))["USN-6986-1"]
    assert vuln.aliases == ("CVE-2024-5535", "CVE-2024-6119")   # UBUNTU-CVE-* related ids are not CVE ids
    assert vuln.summary.startswith("openssl vulnerabilities\n\nIt was discovered that OpenSSL")
    assert vuln.affected == (
        Affected("ubuntu:22.04", "deb", "openssl", None, "3.0.2-0ubuntu1.18", None, "fixed", None),
        Affected("ubuntu:24.04", "deb", "openssl", None, "3.0.13-0ubuntu3.4", None, "fixed", None),
        Affected("ubuntu:18.04", "deb", "openssl", None, "1.1.1-1ubuntu2.1~18.04.23+esm5", None, "fixed", None),
    )


def test_ubuntu_cve_record_priority_cvss_and_fips_stream_left_out():
    vuln = by_id(parse_feed(FIXTURES / "ubuntu" / "UBUNTU-CVE-2024-6119.json"))["UBUNTU-CVE-2024-6119"]
    assert vuln.severity == "medium"
    assert vuln.cvss_vectors == ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H",)
    assert vuln.aliases == ("CVE-2024-6119",)
    assert vuln.affected == (
        Affected("ubuntu:22.04", "deb", "openssl", None, "3.0.2-0ubuntu1.18", None, "fixed", "medium"),
        Affected("ubuntu:24.10", "deb", "openssl", None, None, None, "open", "medium"),   # no fix yet
    )


def test_alpine_releases():
    vuln = by_id(parse_feed(FIXTURES / "alpine" / "ALPINE-CVE-2024-5535.json"))["ALPINE-CVE-2024-5535"]
    assert [(a.distro, a.ecosystem, a.fixed) for a in vuln.affected] == [("alpine:3.18", "apk", "3.1.7-r0"),
                                                                          ("alpine:3.20", "apk", "3.3.2-r0")]
    assert vuln.summary.startswith("Issue summary: Calling the OpenSSL API")


def test_rpm_distros_keep_epochs_and_text_severity():
    feed = by_id(parse_feed(FIXTURES / "rpm"))
    rocky = feed["RLSA-2024:2447"]
    assert [(a.distro, a.ecosystem, a.package, a.fixed) for a in rocky.affected] == [
        ("rocky:9", "rpm", "openssl", "1:3.0.7-27.el9"), ("rocky:9", "rpm", "openssl-libs", "1:3.0.7-27.el9")]
    assert rocky.severity == "Moderate"
    assert rocky.affected[0].urgency is None            # a vendor severity is not a tracker urgency
    assert feed["ALSA-2024:2447"].affected[0].distro == "alma:9"
    rhsa = feed["RHSA-2024:3501"]
    assert rhsa.severity == "Important"
    # the EUS stream (Red Hat:rhel_eus:9.2::baseos) is another product; only enterprise_linux maps to rhel:<major>
    assert rhsa.affected == (Affected("rhel:9", "rpm", "libnghttp2", None, "0:1.43.0-5.el9_4.3", None, "fixed", None),)


def test_pypi_names_last_affected_semver_and_git_ranges():
    feed = by_id(parse_feed(FIXTURES / "pypi"))
    jose = feed["GHSA-6c5p-j8vq-pqhj"]
    assert jose.affected == (
        Affected(None, "pypi", "python-jose", None, None, "3.3.0", "open", None),
        Affected(None, "pypi", "python-jose", "4.0.0", "4.0.1", None, "fixed", None),
    )  # the GIT range carries commits, not versions: ignored
    assert jose.cvss_vectors == ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:H/A:N",
                                 "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:H/VA:N/SC:N/SI:N/SA:N")
    assert jose.severity == "HIGH"
    assert jose.aliases == ("CVE-2024-33663", "PYSEC-2024-232")
    jinja = feed["GHSA-h5c8-rqwp-cp95"]
    assert jinja.affected == (Affected(None, "pypi", "jinja2", None, "3.1.3", None, "fixed", None),)
    assert "GHSA-5cpq-9538-jm2j" not in feed                   # withdrawn


def test_several_intervals_in_one_range_become_several_rows(tmp_path):
    events = [{"introduced": "0"}, {"fixed": "1.0-1"}, {"introduced": "2.0-1"}, {"fixed": "2.0-3"},
              {"introduced": "3.0-1"}, {"limit": "3.5-1"}]
    feed = parse_feed(write(tmp_path / "r.json", record(events=events)))
    rows = [(a.introduced, a.fixed, a.last_affected, a.status) for a in feed.vulnerabilities[0].affected]
    assert rows == [(None, "1.0-1", None, "fixed"), ("2.0-1", "2.0-3", None, "fixed"), ("3.0-1", None, None, "open")]


def test_summary_is_clipped_and_references_capped(tmp_path):
    refs = [{"type": "WEB", "url": f"https://example.org/{i}"} for i in range(15)]
    refs.insert(0, {"type": "WEB", "url": "javascript:alert(1)"})
    data = record(summary="s", details="x" * 5000, references=refs)
    vuln = parse_feed(write(tmp_path / "r.json", data)).vulnerabilities[0]
    assert len(vuln.summary) == 2000 and vuln.summary.startswith("s\n\nxxx")
    assert vuln.references == tuple(f"https://example.org/{i}" for i in range(10))


def test_unscanned_and_bare_records_are_skipped_and_counted(tmp_path):
    write(tmp_path / "a.json", record("GO-2024-1", ecosystem="Go"))
    write(tmp_path / "b.json", record("MAL-2024-1", ecosystem="npm"))
    write(tmp_path / "c.json", {"id": "OSV-2024-1", "modified": "2024-02-01T00:00:00Z"})
    write(tmp_path / "d.json", record("USN-1-1", ecosystem="Ubuntu:Pro:FIPS:20.04:LTS"))
    feed = parse_feed(tmp_path)
    assert feed.vulnerabilities == ()
    assert feed.skipped == {"ecosystem:Go": 1, "ecosystem:npm": 1, "no-affected": 1, "ecosystem:Ubuntu:FIPS": 1}
    assert feed.source == "osv:Go+Ubuntu:FIPS+npm"
    assert feed.version == "2024-02-01T00:00:00Z"


# -- zip archives -------------------------------------------------------------------------------------------


def test_zip_as_osv_publishes_it(tmp_path):
    members = {p.name: p.read_bytes() for p in sorted((FIXTURES / "debian").glob("*.json"))}
    members["GHSA-35jh-r3h4-6jhm.json"] = (FIXTURES / "other" / "GHSA-35jh-r3h4-6jhm.json").read_bytes()
    members["README.txt"] = b"not a record"
    calls = []
    feed = parse_feed(make_zip(tmp_path / "all.zip", members), on_progress=lambda d, t: calls.append((d, t)))
    assert feed.source == "osv:Debian"
    assert sorted(by_id(feed)) == ["DLA-3850-1", "DSA-5764-1"]
    assert feed.skipped == {"ecosystem:npm": 1, "file:not-json": 1}
    assert calls == [(3, 3)]
    assert feed.version == "2024-09-03T20:15:51.384426Z"


def test_progress_about_every_thousand_records(tmp_path):
    members = {f"DSA-{i}-1.json": json.dumps(record(f"DSA-{i}-1")) for i in range(2500)}
    calls = []
    feed = parse_feed(make_zip(tmp_path / "all.zip", members), on_progress=lambda d, t: calls.append((d, t)))
    assert len(feed.vulnerabilities) == 2500
    assert calls == [(1000, 2500), (2000, 2500), (2500, 2500)]


def test_zip_member_errors_name_the_member(tmp_path):
    bad = record("DSA-2-1", events=[{"introduced": "0", "fixed": "1"}])
    path = make_zip(tmp_path / "all.zip", {"DSA-1-1.json": '{"id": "DSA-1-1", "modi', "DSA-2-1.json": json.dumps(bad)})
    with pytest.raises(FeedError) as err:
        parse_feed(path)
    text = str(err.value)
    assert "2 problems" in text
    assert f"{path} member DSA-1-1.json: line 1 column" in text and "invalid JSON" in text
    assert f"{path} member DSA-2-1.json: affected[0].ranges[0].events[0]: an event has exactly one of" in text


def test_oversized_zip_member_is_refused(tmp_path):
    path = make_zip(tmp_path / "all.zip", {"DSA-1-1.json": b" " * (osv_mod.MAX_MEMBER_BYTES + 1)})
    with pytest.raises(FeedError, match=r"member DSA-1-1\.json: member expands to 50000001 bytes"):
        parse_feed(path)


def test_zip_bomb_is_refused_before_decompressing(tmp_path):
    path = make_zip(tmp_path / "all.zip", {"a.json": b"0" * 3_000_000, "b.json": b"0" * 3_000_000})
    assert path.stat().st_size < 100_000
    with pytest.raises(FeedError, match=r"all\.zip: zip bomb refused: members expand to 6000000 bytes"):
        parse_feed(path, max_bytes=5_000_000)


def test_corrupt_zip(tmp_path):
    path = tmp_path / "all.zip"
    path.write_bytes(b"PK\x03\x04" + b"\x00" * 64)
    with pytest.raises(FeedError, match=r"all\.zip: not a readable zip archive"):
        parse_feed(path)


def test_record_cap(tmp_path, monkeypatch):
    monkeypatch.setattr(osv_mod, "MAX_RECORDS", 3)
    path = make_zip(tmp_path / "all.zip", {f"{i}.json": "{}" for i in range(4)})
    with pytest.raises(FeedError, match=r"4 members, more than the 3-record cap"):
        parse_feed(path)


def test_file_above_max_bytes(tmp_path):
    path = write(tmp_path / "r.json", record())
    with pytest.raises(FeedError, match=r"r\.json: file is \d+ bytes, larger than the 100-byte cap"):
        parse_feed(path, max_bytes=100)


# -- invalid records ----------------------------------------------------------------------------------------

LONG = "x" * 256


@pytest.mark.parametrize(("data", "where", "reason"), [
    ({"modified": "2024-01-01T00:00:00Z", "affected": []}, "id", "required"),
    (record("x" * 129), "id", "longer than 128 characters"),
    (record(modified=None), "modified", "required"),
    (record(modified="yesterday"), "modified", "not an RFC 3339 timestamp"),
    (record(published="2024-13-45T00:00:00Z"), "published", "not an RFC 3339 timestamp"),
    (record(affected={"package": {}}), "affected", "expected a list, got an object"),
    (record(affected=[{"ranges": []}]), "affected[0].package", "required"),
    (record(affected=[{"package": {"ecosystem": "Debian:12", "name": LONG}}]), "affected[0].package.name",
     "longer than 255 characters"),
    (record(affected=[{"package": {"ecosystem": "Debian", "name": "p"}}]), "affected[0].package.ecosystem",
     "ecosystem 'Debian' names no release"),
    (record(affected=[{"package": {"ecosystem": "Alpine:edge", "name": "p"}}]), "affected[0].package.ecosystem",
     "no release like v3.18"),
    (record(affected=[{"package": {"ecosystem": "Debian:12", "name": "p"}, "ranges": [{"type": "ECOSYSTEM"}]}]),
     "affected[0].ranges[0].events", "required"),
    (record(events=[{"fixed": "1.0"}]), "affected[0].ranges[0].events", "a range needs an 'introduced' event"),
    (record(events=[{"introduced": "0"}, {"fixed": LONG}]), "affected[0].ranges[0].events[1].fixed",
     "longer than 255 characters"),
    (record(events=[{"introduced": 0}]), "affected[0].ranges[0].events[0].introduced", "expected a string"),
    (record(severity=[{"type": "CVSS_V3"}]), "severity[0].score", "required"),
    (record(aliases="CVE-2024-1"), "aliases", "expected a list, got a string"),
    (record(references=[{"type": "WEB", "url": 7}]), "references[0].url", "expected a string"),
    (record(withdrawn="soon"), "withdrawn", "not an RFC 3339 timestamp"),
    (["not", "an", "object"], "", "an OSV record is a JSON object"),
])
def test_invalid_record(tmp_path, data, where, reason):
    path = write(tmp_path / "osv" / "rec.json", data)
    with pytest.raises(FeedError) as err:
        parse_feed(tmp_path / "osv", kind="osv")
    prefix = f"{path}: {where}: " if where else f"{path}: "
    assert str(err.value).startswith(prefix + reason), str(err.value)


def test_truncated_json_file_in_directory(tmp_path):
    path = write(tmp_path / "d" / "DSA-1-1.json", json.dumps(record())[:-20])
    with pytest.raises(FeedError, match=rf"{path}: line 1 column \d+: invalid JSON"):
        parse_feed(tmp_path / "d")


def test_duplicate_ids_across_files(tmp_path):
    write(tmp_path / "a" / "DSA-1-1.json", record())
    write(tmp_path / "b" / "DSA-1-1.json", record())
    with pytest.raises(FeedError, match=r"b/DSA-1-1\.json: id: duplicate id 'DSA-1-1': also in .*a/DSA-1-1\.json"):
        parse_feed(tmp_path)


def test_problems_are_collected_up_to_twenty(tmp_path):
    for i in range(25):
        write(tmp_path / f"{i:02}.json", record(f"DSA-{i}-1", modified="bad"))
    with pytest.raises(FeedError) as err:
        parse_feed(tmp_path)
    assert len(err.value.problems) == 20
    assert str(err.value).startswith(f"{tmp_path}: 20 problems (stopped after 20):")
    assert all(": modified: not an RFC 3339 timestamp" in p for p in err.value.problems)


def test_debian_codename_release_maps_like_the_tracker(tmp_path):
    feed = parse_feed(write(tmp_path / "r.json", record(ecosystem="Debian:bookworm")))
    assert feed.vulnerabilities[0].affected[0].distro == "debian:12"


def test_versions_list_is_a_row_only_without_ranges(tmp_path):
    data = record(affected=[{"package": {"ecosystem": "PyPI", "name": "Foo.Bar"}, "versions": ["1.0", "1.1"],
                             "ecosystem_specific": {"urgency": "low"}},
                            {"package": {"ecosystem": "PyPI", "name": "baz"}, "versions": ["2.0"],
                             "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "2.0"}, {"fixed": "2.1"}]}]}])
    vuln = parse_feed(write(tmp_path / "r.json", data)).vulnerabilities[0]
    assert vuln.affected == (Affected(None, "pypi", "foo-bar", None, None, None, "open", "low", ("1.0", "1.1")),
                             Affected(None, "pypi", "baz", "2.0", "2.1", None, "fixed", None))
