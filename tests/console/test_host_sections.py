"""The host page's sections: check results, facts, findings, alerts, scans, agent health, history, changes.

Rows come from the real pipeline (heartbeat, facts judged into check results and findings), the
alerts service and the scan store (tests/console/hosts_helpers.py), for web01 in D1; D2 gets rows
of its own that must never show on D1's pages, and the other way round.
"""

from __future__ import annotations

import dataclasses
import html
import re
from datetime import timedelta

from collector.compliance import service as compliance
from collector.findings import service as findings
from collector.findings.service import FindingFilter
from collector.scope import Scope
from collector.types import utcnow
from console import i18n
from console.routes import hosts as host_routes
from tests.console import helpers as h
from tests.console import hosts_helpers as hh

NEXT_LINK = re.compile(r'rel="next" href="([^"]+)"')


def section(page: str, anchor: str) -> str:
    """The HTML of one <section id=...> of the page."""
    start = page.index(f'<section id="{anchor}"')
    return page[start:page.index("</section>", start)]


def test_each_section_shows_the_hosts_rows(client, db, world):
    seeded = hh.seed_sections(db, world)
    with db.session() as s:
        [finding] = findings.list_(s, scope=Scope.everything(), now=utcnow(),
                                   filters=FindingFilter(host_id=world.web01, status="open", kind="check",
                                                         rule=hh.ROOT_LOGIN))
    h.logged_in(client, "officer1")
    page = client.get(f"/hosts/{world.web01}")
    assert page.status_code == 200
    text = page.text

    checks = section(text, "checks")
    where = checks.index(hh.ROOT_LOGIN)
    root_login = checks[max(0, where - 400):where + 1200]
    assert "Vô hiệu hóa đăng nhập trực tiếp tài khoản root qua SSH" in root_login  # the rule's Vietnamese title
    assert "không đạt" in root_login and "permitrootlogin" in root_login  # status and evidence
    assert "Cách khắc phục" in root_login and "PermitRootLogin no" in root_login  # the rule's remediation
    assert checks.index(">không đạt</span>") < checks.index(">đạt</span>")  # failures listed before passes

    facts = section(text, "facts")
    assert "sshd" in facts and "permitrootlogin" in facts and "passwordauthentication" in facts

    open_findings = section(text, "findings")
    assert f'href="/remediation/{finding.id}"' in open_findings and "Check failed:" in open_findings

    alerts = section(text, "alerts")
    assert f'href="/alerts/{seeded.d1_alert}"' in alerts and "ssh-brute-force" in alerts
    assert f"/alerts/{seeded.d2_alert}" not in text and "d2-only-rule" not in text

    scans = section(text, "scans")
    assert hh.WEB01_ADDRESS in scans and "OpenSSH" in scans and ">80<" in scans
    assert hh.UNMANAGED_D1 in scans  # the unit's device without an agent
    # D2 scanned the same private address (another machine) and its own unmanaged device: not here.
    assert "vnc" not in scans and ">5900<" not in scans and hh.UNMANAGED_D2 not in text

    agent = section(text, "agent")
    assert seeded.agent_id in agent and "0.2.0" in agent
    assert "7 (2,0 KiB)" in agent  # spool depth and size from the heartbeat
    assert "40,0 MiB" in agent and ": 3" in agent  # memory, and the drop counter by reason
    assert "Mất liên lạc" not in agent  # just heard from


def test_agent_supplied_and_network_markup_is_escaped_in_every_section(client, db, world, monkeypatch):
    hh.seed_sections(db, world)
    # Check titles come from rule files; a hostile one (an imported rule pack) must render as text too.
    real = compliance.builtin_checks()
    root = real.checks[hh.ROOT_LOGIN]
    hostile = dataclasses.replace(root, title={"vi": h.XSS, "en": h.XSS}, remediation={"vi": hh.HOSTILE_FACT})
    patched = dataclasses.replace(real, checks={**real.checks, hh.ROOT_LOGIN: hostile})
    monkeypatch.setattr(host_routes.compliance, "builtin_checks", lambda: patched)
    h.logged_in(client, "admin")
    text = client.get(f"/hosts/{world.web01}").text
    for raw in (h.XSS, hh.HOSTILE_FACT, hh.HOSTILE_BANNER, hh.HOSTILE_GROUP, hh.HOSTILE_REASON,
                hh.HOSTILE_COLLECTOR):
        assert raw not in text, raw
    escaped = {
        "checks": ["&lt;script&gt;alert(1)&lt;/script&gt;", "&lt;iframe src=javascript:alert(4)&gt;"],
        "facts": ["&lt;iframe src=javascript:alert(4)&gt;"],
        "alerts": ["&lt;img src=y onerror=alert(5)&gt;"],
        "scans": ["&lt;script&gt;alert(&#39;banner&#39;)&lt;/script&gt;"],
        "agent": ["&lt;b&gt;spool_full&lt;/b&gt;", "&lt;svg onload=alert(3)&gt;",
                  "&lt;script&gt;alert(1)&lt;/script&gt;"],
    }
    for anchor, expected in escaped.items():
        for value in expected:
            assert value in section(text, anchor), (anchor, value)


def test_officers_see_only_their_units_hosts_and_rows(client, db, world):
    seeded = hh.seed_sections(db, world)
    h.logged_in(client, "officer2")
    for path in (f"/hosts/{world.web01}", f"/hosts/{world.web01}/changes", f"/hosts/{world.web01}?as_of=2026-01-01",
                 "/hosts/999999", "/hosts/999999/changes"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert "web01.d1.gov.vn" not in response.text and "ssh-brute-force" not in response.text
    own = client.get(f"/hosts/{world.db02}").text
    assert f'href="/alerts/{seeded.d2_alert}"' in own and "d2-only-rule" in own
    assert hh.UNMANAGED_D2 in section(own, "scans")
    for d1_value in ("ssh-brute-force", hh.UNMANAGED_D1, seeded.agent_id, hh.ROOT_LOGIN):
        assert d1_value not in own, d1_value


def test_as_of_a_date_shows_the_inventory_of_that_day(client, world):
    h.logged_in(client, "officer1")
    current = client.get(f"/hosts/{world.web01}").text
    assert "3.0.13" in section(current, "packages") and "nginx" in section(current, "packages")
    # web01's first inventory (openssl 3.0.11) is three days old; the upgrade came an hour ago.
    day = i18n.to_vietnam_time(utcnow() - timedelta(days=2)).date().isoformat()
    then = client.get(f"/hosts/{world.web01}?as_of={day}").text
    packages = section(then, "packages")
    assert "3.0.11" in packages and "3.0.13" not in packages and "nginx" not in packages
    assert ">80<" not in section(then, "ports")  # port 80 opened with the upgrade
    assert "Gói được nâng cấp" not in section(then, "changes")  # the upgrade event is after that day
    assert day in section(then, "history")
    before_first = i18n.to_vietnam_time(utcnow() - timedelta(days=10)).date().isoformat()
    assert "openssl" not in section(client.get(f"/hosts/{world.web01}?as_of={before_first}").text, "packages")


def test_a_bad_or_future_date_shows_the_current_state_with_a_notice(officer1, world):
    bad = officer1.get(f"/hosts/{world.web01}?as_of=<b>yesterday</b>")
    assert bad.status_code == 200
    assert "Ngày không hợp lệ" in bad.text and "<b>yesterday</b>" not in bad.text
    assert "3.0.13" in section(bad.text, "packages")
    future = (utcnow() + timedelta(days=30)).date().isoformat()
    later = officer1.get(f"/hosts/{world.web01}?as_of={future}").text
    assert "ở tương lai" in later and "3.0.13" in section(later, "packages")


def follow(client, first: str) -> list[str]:
    """Every page's HTML, following the 'next' links from ``first``."""
    pages, url = [], first
    while url:
        page = client.get(url)
        assert page.status_code == 200, url
        pages.append(page.text)
        found = NEXT_LINK.search(page.text)
        url = html.unescape(found.group(1)) if found else None
        assert len(pages) < 20, "pager does not end"
    return pages


def test_change_events_page_filters_by_type_and_pages_through_everything(officer1, world, monkeypatch):
    monkeypatch.setattr(host_routes, "CHANGES_PAGE_SIZE", 1)
    pages = follow(officer1, f"/hosts/{world.web01}/changes")
    rows = [section(p, "changes") for p in pages]
    assert len(rows) == 3  # openssl upgraded, nginx installed, port 80 opened: one per page
    kinds = sorted(label for r in rows for label in ("Gói được nâng cấp", "Gói được cài đặt", "Cổng được mở")
                   if label in r)
    assert kinds == ["Cổng được mở", "Gói được cài đặt", "Gói được nâng cấp"]
    only_ports = officer1.get(f"/hosts/{world.web01}/changes?type=port.opened").text
    assert "Cổng được mở" in section(only_ports, "changes") and "Gói được" not in section(only_ports, "changes")
    unknown = officer1.get(f"/hosts/{world.web01}/changes?type=<x>&before=garbage")
    assert unknown.status_code == 200 and "không hợp lệ" in unknown.text and "<x>" not in unknown.text
    assert section(unknown.text, "changes") == rows[0]  # both ignored: every type, from the newest
