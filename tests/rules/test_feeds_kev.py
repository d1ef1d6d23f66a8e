"""CISA KEV catalog: exact entries, header checks (count), and entry errors."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from rules.feeds import FeedError, KnownExploited, parse_feed

FIXTURE = Path(__file__).parent / "fixtures" / "feeds" / "kev.json"


def catalog(**changes) -> dict:
    data = json.loads(FIXTURE.read_text())
    data.update(changes)
    return data


def write(tmp_path: Path, data) -> Path:
    path = tmp_path / "known_exploited_vulnerabilities.json"
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return path


def test_catalog_parses_exactly():
    calls = []
    feed = parse_feed(FIXTURE, on_progress=lambda d, t: calls.append((d, t)))
    assert (feed.kind, feed.source, feed.version) == ("kev", "cisa-kev", "2026.11.20")
    assert calls == [(5, 5)]
    assert [k.cve for k in feed.known_exploited] == ["CVE-2021-44228", "CVE-2024-3400", "CVE-2023-4966",
                                                     "CVE-2023-34362", "CVE-2024-1709"]
    assert feed.known_exploited[0] == KnownExploited(
        cve="CVE-2021-44228", vendor="Apache", product="Log4j2",
        name="Apache Log4j2 Remote Code Execution Vulnerability",
        date_added=date(2021, 12, 10), due_date=date(2021, 12, 24), ransomware=True,
        description="Apache Log4j2 contains a vulnerability where JNDI features do not protect against "
                    "attacker-controlled JNDI-related endpoints, allowing for remote code execution.")
    assert feed.known_exploited[1].ransomware is None          # "Unknown" is not "no"
    assert feed.vulnerabilities == () and feed.warnings == ()


def test_due_date_may_be_missing(tmp_path):
    data = catalog()
    del data["vulnerabilities"][0]["dueDate"]
    feed = parse_feed(write(tmp_path, data))
    assert feed.known_exploited[0].due_date is None


def test_count_must_match(tmp_path):
    data = catalog(count=6)
    path = write(tmp_path, data)
    with pytest.raises(FeedError, match=rf"^{path}: count: says 6 but the catalog lists 5 vulnerabilities"):
        parse_feed(path)


def entry_change(i: int, key: str, value) -> dict:
    data = catalog()
    if value is None:
        del data["vulnerabilities"][i][key]
    else:
        data["vulnerabilities"][i][key] = value
    return data


@pytest.mark.parametrize(("data", "where", "reason"), [
    (entry_change(1, "cveID", "CVE-24-3400"), "vulnerabilities[1].cveID", "not a CVE id"),
    (entry_change(1, "cveID", None), "vulnerabilities[1].cveID", "expected a string, got null"),
    (entry_change(2, "dateAdded", "18/10/2023"), "vulnerabilities[2].dateAdded", "expected a date like 2026-11-20"),
    (entry_change(2, "dueDate", "2023-02-30"), "vulnerabilities[2].dueDate", "not a real date"),
    (entry_change(3, "vendorProject", None), "vulnerabilities[3].vendorProject", "required"),
    (entry_change(3, "product", 42), "vulnerabilities[3].product", "expected a string, got an integer"),
    (entry_change(4, "knownRansomwareCampaignUse", "Maybe"), "vulnerabilities[4].knownRansomwareCampaignUse",
     "expected Known or Unknown"),
    (entry_change(4, "cwes", "CWE-288"), "vulnerabilities[4].cwes", "expected a list, got a string"),
    (entry_change(4, "cveID", "CVE-2021-44228"), "vulnerabilities[4].cveID",
     "duplicate CVE-2021-44228: also vulnerabilities[0]"),
    (catalog(catalogVersion=None), "catalogVersion", "required"),
    (catalog(dateReleased="last week"), "dateReleased", "not an RFC 3339 timestamp"),
    (catalog(count="5"), "count", "required integer"),
    (catalog(vulnerabilities={"a": 1}), "vulnerabilities", "expected a list, got an object"),
])
def test_invalid(tmp_path, data, where, reason):
    path = write(tmp_path, data)
    with pytest.raises(FeedError) as err:
        parse_feed(path, kind="kev")
    assert str(err.value).startswith(f"{path}: {where}: {reason}"), str(err.value)


def test_entry_problems_are_collected(tmp_path):
    data = catalog()
    for item in data["vulnerabilities"]:
        item["dateAdded"] = "soon"
    path = write(tmp_path, data)
    with pytest.raises(FeedError) as err:
        parse_feed(path)
    assert str(err.value).startswith(f"{path}: 5 problems:")
    assert len(err.value.problems) == 5


def test_truncated_download(tmp_path):
    path = write(tmp_path, FIXTURE.read_text()[:3000])
    with pytest.raises(FeedError, match=rf"^{path}: line \d+ column \d+: invalid JSON"):
        parse_feed(path, kind="kev")
