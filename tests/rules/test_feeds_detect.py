"""Feed kind detection from content, kind/shape mismatches, and the package's public surface and purity."""

from __future__ import annotations

import ast
import json
import zipfile
from pathlib import Path

import pytest

import rules.feeds
from rules.feeds import FEED_KINDS, FeedError, detect_kind, parse_feed

FIXTURES = Path(__file__).parent / "fixtures" / "feeds"
PACKAGE = Path(rules.feeds.__file__).parent


@pytest.mark.parametrize(("path", "kind"), [
    (FIXTURES / "osv", "osv"),
    (FIXTURES / "osv" / "debian" / "DSA-5764-1.json", "osv"),
    (FIXTURES / "debian-tracker.json", "debian-tracker"),
    (FIXTURES / "kev.json", "kev"),
    (FIXTURES / "warnings.json", "warnings"),
    (FIXTURES / "warnings.csv", "warnings"),
])
def test_fixtures_detected(path, kind):
    assert detect_kind(path) == kind
    assert parse_feed(path).kind == kind


def test_zip_detected_whatever_its_name(tmp_path):
    path = tmp_path / "feed.bin"
    with zipfile.ZipFile(path, "w") as archive:
        archive.write(FIXTURES / "osv" / "debian" / "DSA-5764-1.json", "DSA-5764-1.json")
    assert detect_kind(path) == "osv"
    assert parse_feed(path).source == "osv:Debian"


def test_renamed_json_is_detected_by_content(tmp_path):
    path = tmp_path / "download.txt"
    path.write_bytes((FIXTURES / "kev.json").read_bytes())
    assert detect_kind(path) == "kev"


@pytest.mark.parametrize(("content", "reason"), [
    ('{"hello": "world"}', "unknown feed format: JSON is not a KEV catalog"),
    ("[]", "unknown feed format: JSON is not a KEV catalog"),
    ("{}", "unknown feed format: JSON is not a KEV catalog"),
    ("id,name\n1,2\n", "unknown feed format: not an OSV zip or directory"),
    ("", "unknown feed format: not an OSV zip or directory"),
    ('{"id": "X", "modi', "line 1 column 13: invalid JSON"),
])
def test_unknown_or_broken(tmp_path, content, reason):
    path = tmp_path / "feed.json"
    path.write_text(content)
    with pytest.raises(FeedError, match=rf"^{path}: {reason}"):
        detect_kind(path)
    with pytest.raises(FeedError, match=rf"^{path}: {reason}"):
        parse_feed(path)


def test_missing_path_and_empty_directory(tmp_path):
    with pytest.raises(FeedError, match=r"nope\.json: no such file or directory"):
        parse_feed(tmp_path / "nope.json")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FeedError, match=r"empty: directory holds no \*\.json OSV records"):
        detect_kind(tmp_path / "empty")


def test_kind_must_be_known_and_fit(tmp_path):
    with pytest.raises(FeedError, match=r"unknown feed kind 'nvd'; expected one of osv, debian-tracker, kev, warnings"):
        parse_feed(FIXTURES / "kev.json", kind="nvd")
    with pytest.raises(FeedError, match=r"osv: this is an 'osv' feed, not 'kev'"):
        parse_feed(FIXTURES / "osv", kind="kev")
    with pytest.raises(FeedError, match=r"warnings\.json: catalogVersion: required"):
        parse_feed(FIXTURES / "warnings.json", kind="kev")


def test_kind_given_skips_detection(tmp_path):
    path = tmp_path / "tracker.json"
    path.write_text(json.dumps({"pkg": {}}))               # too empty to detect, valid when told
    with pytest.raises(FeedError, match="unknown feed format"):
        detect_kind(path)
    assert parse_feed(path, kind="debian-tracker").vulnerabilities == ()


def test_max_bytes_applies_to_detection(tmp_path):
    with pytest.raises(FeedError, match=r"kev\.json: file is \d+ bytes, larger than the 1000-byte cap"):
        detect_kind(FIXTURES / "kev.json", max_bytes=1000)


def test_public_api():
    assert FEED_KINDS == ("osv", "debian-tracker", "kev", "warnings")
    assert issubclass(FeedError, ValueError)
    for name in ("Affected", "Vulnerability", "KnownExploited", "OfficialWarning", "ParsedFeed", "detect_kind",
                 "parse_feed", "FeedError", "FEED_KINDS"):
        assert hasattr(rules.feeds, name)


FORBIDDEN = {"collector", "agent", "console", "khien", "fastapi", "sqlalchemy", "sqlmodel", "starlette",
             "rules.versions", "rules.cvss"}


def test_package_is_pure():
    for file in PACKAGE.glob("*.py"):
        tree = ast.parse(file.read_text())
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert not any(name == f or name.startswith(f + ".") for f in FORBIDDEN), (file, name)
