"""Packages: dpkg's status file against dpkg-query on this host, fixtures for edge cases and rpm."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

import pytest

from agent.collectors.inventory import packages
from agent.collectors.inventory.packages import (
    RPM_QUERYFORMAT,
    PackagesError,
    collect_packages,
    parse_rpm_output,
    query_rpm,
    source_from_srpm,
)

FIXTURES = Path(__file__).parent / "fixtures" / "inventory"
ROOT = FIXTURES / "root"


def test_dpkg_packages_match_dpkg_query_exactly():
    out = subprocess.run(["dpkg-query", "-W", "-f", "${Status}\t${Package}\t${Version}\t${Architecture}\n"],
                         capture_output=True, text=True, check=True).stdout
    expected = set()
    for line in out.splitlines():
        status, name, version, arch = line.split("\t")
        if status.split()[0] in ("install", "hold") and status.endswith(" installed"):
            expected.add((name, version, arch))
    rows = collect_packages()
    assert expected, "this Debian host has packages"
    assert {(r["name"], r["version"], r["arch"]) for r in rows} == expected
    assert len(rows) == len(expected)
    assert {r["manager"] for r in rows} == {"dpkg"}


def test_dpkg_source_and_source_version_match_dpkg_query():
    out = subprocess.run(["dpkg-query", "-W", "-f", "${Package}:${Architecture}\t${source:Package}\t"
                          "${source:Version}\n"], capture_output=True, text=True, check=True).stdout
    expected = dict(line.split("\t", 1) for line in out.splitlines())
    for row in collect_packages():
        assert f"{row['source']}\t{row['source_version']}" == expected[f"{row['name']}:{row['arch']}"]


def test_dpkg_fixture_stanzas():
    rows = {(r["name"], r["arch"]): r for r in collect_packages(ROOT)}
    assert set(rows) == {("bash", "amd64"), ("libssl3", "amd64"), ("libssl3", "i386"), ("tzdata", "all"),
                         ("python3-yaml", "amd64")}
    assert rows["bash", "amd64"] == {"name": "bash", "version": "5.2.15-2+b7", "arch": "amd64",
                                          "source": "bash", "source_version": "5.2.15-2", "manager": "dpkg"}
    assert (rows["libssl3", "i386"]["source"], rows["libssl3", "i386"]["source_version"]) == (
        "openssl", "3.0.15-1~deb12u1")
    assert (rows["tzdata", "all"]["source"], rows["tzdata", "all"]["source_version"]) == ("tzdata", "2024a-0+deb12u1")
    assert rows["python3-yaml", "amd64"]["version"] == "1:6.0-3+b2"
    assert rows["python3-yaml", "amd64"]["source_version"] == "6.0-3"


def test_no_dpkg_database_means_no_packages(tmp_path):
    assert collect_packages(tmp_path) == []


def test_rpm_output_parsing():
    rows = {r["name"]: r for r in parse_rpm_output((FIXTURES / "rpm_qa.txt").read_text())}
    assert len(rows) == 6
    assert rows["openssl-libs"] == {"name": "openssl-libs", "version": "1:3.0.7-27.el9", "arch": "x86_64",
                                    "source": "openssl", "source_version": "3.0.7-27.el9", "manager": "rpm"}
    assert (rows["python3-libs"]["source"], rows["kernel-core"]["source"]) == ("python3.9", "kernel")
    assert rows["gpg-pubkey"] == {"name": "gpg-pubkey", "version": "fd431d51-4ae0493b", "arch": None,
                                       "source": "gpg-pubkey", "source_version": "fd431d51-4ae0493b",
                                       "manager": "rpm"}


@pytest.mark.parametrize(("srpm", "expected"), [
    ("bash-5.1.8-9.el9.src.rpm", ("bash", "5.1.8-9.el9")),
    ("java-17-openjdk-17.0.10.0.7-2.el9.src.rpm", ("java-17-openjdk", "17.0.10.0.7-2.el9")),
    ("foo-1-2.nosrc.rpm", ("foo", "1-2")),
    ("(none)", None), ("weird.src.rpm", None),
])
def test_source_from_srpm(srpm, expected):
    assert source_from_srpm(srpm) == expected


def fake_rpm(tmp_path: Path, script: str) -> str:
    """An executable standing in for rpm: this host has no rpm database."""
    path = tmp_path / "rpm"
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def test_rpm_query_passes_the_format_and_parses(tmp_path):
    args_file = tmp_path / "args"
    rpm = fake_rpm(tmp_path, f'printf "%s\\n" "$@" > {args_file}; cat {FIXTURES / "rpm_qa.txt"}')
    rows = parse_rpm_output(query_rpm(rpm))
    assert args_file.read_text().splitlines() == ["-qa", "--queryformat", RPM_QUERYFORMAT]
    assert len(rows) == 6


def test_rpm_failure_raises(tmp_path):
    with pytest.raises(PackagesError, match="exited 1"):
        query_rpm(fake_rpm(tmp_path, "echo 'error: db broken' >&2; exit 1"))


def test_rpm_is_only_queried_with_an_rpm_database(tmp_path, monkeypatch):
    rpm = fake_rpm(tmp_path, f'cat {FIXTURES / "rpm_qa.txt"}')
    monkeypatch.setattr(packages.shutil, "which", lambda name: rpm if name == "rpm" else None)
    monkeypatch.setattr(packages, "RPM_DB_DIRS", (str(tmp_path / "no-db"),))
    assert packages.rpm_packages(Path("/")) == []
    monkeypatch.setattr(packages, "RPM_DB_DIRS", (str(tmp_path),))
    assert len(packages.rpm_packages(Path("/"))) == 6
