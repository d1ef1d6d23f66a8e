"""Host pages: unit scoping, the stale marker, inventory tables, change events, escaping."""

from __future__ import annotations

import html
import re
from datetime import timedelta

from tests.console import helpers as h

STALE_VI = "Mất liên lạc"


def test_unit_officer_sees_only_their_units_hosts(officer1):
    page = officer1.get("/hosts")
    assert page.status_code == 200
    assert "web01.d1.gov.vn" in page.text
    assert "db02.d2.gov.vn" not in page.text


def test_admin_sees_every_unit_and_can_filter_by_unit(admin):
    everything = admin.get("/hosts").text
    assert "web01.d1.gov.vn" in everything and "db02.d2.gov.vn" in everything
    only_d2 = admin.get("/hosts?unit=D2").text
    assert "db02.d2.gov.vn" in only_d2 and "web01.d1.gov.vn" not in only_d2


def test_unit_filter_cannot_widen_an_officers_scope(officer1):
    page = officer1.get("/hosts?unit=D2")
    assert page.status_code == 200
    assert "db02.d2.gov.vn" not in page.text


def test_another_units_host_page_is_a_plain_404(officer1, world):
    response = officer1.get(f"/hosts/{world.db02}")
    assert response.status_code == 404
    assert "db02.d2.gov.vn" not in response.text
    assert "postgresql-15" not in response.text
    # Indistinguishable from a host id that does not exist at all.
    assert officer1.get("/hosts/999999").status_code == 404


def test_stale_marker_follows_last_seen(client, world):
    h.logged_in(client, "officer1")
    assert STALE_VI not in client.get("/hosts").text
    client.cookies.clear()
    h.logged_in(client, "officer2")
    assert STALE_VI in client.get("/hosts").text
    assert STALE_VI in client.get(f"/hosts/{world.db02}").text


def test_host_page_shows_inventory_and_recent_changes(officer1, world):
    page = officer1.get(f"/hosts/{world.web01}")
    assert page.status_code == 200
    text = page.text
    for expected in ("Debian GNU/Linux 12 (bookworm)", "Intel Xeon E5-2680", "8,0 GiB", "10.1.2.3",
                     "sshd", "nginx", "backdoor", "ssh.service", "3.0.13", "Gói phần mềm", "Cổng đang mở",
                     "Người dùng", "Dịch vụ", "Sự kiện thay đổi gần đây"):
        assert expected in text, expected
    # The derived change events from the second inventory.
    assert "Gói được nâng cấp" in text and "3.0.11 → 3.0.13" in text
    assert "Gói được cài đặt" in text
    assert "Cổng được mở" in text and "tcp 0.0.0.0:80" in text


def test_agent_supplied_markup_is_escaped_everywhere(admin, world):
    for path in ("/hosts", f"/hosts/{world.hostile}"):
        text = admin.get(path).text
        assert h.XSS not in text, path
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text, path
    host_page = admin.get(f"/hosts/{world.hostile}").text
    assert "<img src=x" not in host_page
    assert "&#34;&gt;&lt;img src=x onerror=alert(2)&gt;" in host_page


def test_synthetic_units_hosts_are_marked(client, db, world):
    from collector.units import service as units

    with db.transaction() as s:
        unit = units.get_by_code(s, code="D2")
        unit.synthetic = True
        s.add(unit)
    viewer = h.logged_in(client, "admin")
    listing = viewer.get("/hosts").text
    row = listing[listing.index("db02.d2.gov.vn"):]
    assert "dữ liệu mô phỏng" in row[:row.index("</tr>")]
    other = listing[listing.index("web01.d1.gov.vn"):]
    assert "dữ liệu mô phỏng" not in other[:other.index("</tr>")]
    assert "Dữ liệu mô phỏng" in viewer.get(f"/hosts/{world.db02}").text
    assert "Dữ liệu mô phỏng" not in viewer.get(f"/hosts/{world.web01}").text


# ---- the list: keyset pages, filters, sort, query count ---------------------------------------------

HOST_LINK = re.compile(r'<td><a href="/hosts/(\d+)">')
PAGER_LINK = {rel: re.compile(rf'rel="{rel}" href="([^"]+)"') for rel in ("next", "prev")}


def more_hosts(db) -> dict[str, int]:
    """Extra hosts: equal hostnames (the id breaks ties), one never seen, classified ones, one in D2."""
    from collector.hosts import service as hosts
    from collector.types import utcnow
    from collector.units import service as units

    made: dict[str, int] = {}
    now = utcnow()
    with db.transaction() as s:
        d1, d2 = units.get_by_code(s, code="D1").id, units.get_by_code(s, code="D2").id
        for n, (name, unit_id, seen) in enumerate([
                ("dup.d1.gov.vn", d1, now - timedelta(minutes=1)), ("dup.d1.gov.vn", d1, now - timedelta(minutes=1)),
                ("dup.d1.gov.vn", d1, now - timedelta(days=5)), ("never.d1.gov.vn", d1, None),
                ("Mail_100%.d1.gov.vn", d1, now - timedelta(minutes=3)), ("app.d2.gov.vn", d2, now)]):
            host = hosts.find_or_create(s, unit_id=unit_id, now=now - timedelta(days=9), identity={
                "hostname": name, "machine_id": f"{n + 10:032d}", "product_uuid": None, "macs": []})
            if seen is not None:
                hosts.touch(host, at=seen)
            made[f"{name}#{n}"] = host.id
        s.flush()
        mail = made["Mail_100%.d1.gov.vn#4"]
        hosts.set_classification(s, host_id=mail, security_level=4, internet_facing=True)
    return made


def walk(client, first: str, rel: str = "next") -> tuple[list[list[int]], str]:
    """Host ids page by page following ``rel`` links, and the last page's URL."""
    pages, url, last = [], first, first
    while url:
        text = client.get(url).text
        pages.append([int(i) for i in HOST_LINK.findall(text)])
        last = url
        found = PAGER_LINK[rel].search(text)
        url = html.unescape(found.group(1)) if found else None
        assert len(pages) < 30, "pager does not end"
    return pages, last


def test_keyset_pages_list_every_host_exactly_once_in_every_sort(admin, db, world, monkeypatch):
    from console.routes import hosts as host_routes

    extra = more_hosts(db)
    everyone = sorted([world.web01, world.db02, world.hostile, *extra.values()])
    monkeypatch.setattr(host_routes, "PAGE_SIZE", 2)
    for sort in ("hostname", "recent", "oldest"):
        pages, last = walk(admin, f"/hosts?sort={sort}")
        seen = [i for page in pages for i in page]
        assert sorted(seen) == everyone and len(seen) == len(set(seen)), sort
        assert all(len(page) == 2 for page in pages[:-1])
        back, _ = walk(admin, last, rel="prev")  # and backwards from the last page: the same pages
        assert [i for page in reversed(back) for i in page] == seen, sort
    recent = walk(admin, "/hosts?sort=recent")[0]
    oldest = walk(admin, "/hosts?sort=oldest")[0]
    assert extra["never.d1.gov.vn#3"] == oldest[0][0] == recent[-1][-1]  # never seen: the most silent


def test_filters_narrow_the_list_and_never_widen_the_scope(client, db, world):
    extra = more_hosts(db)
    admin = h.logged_in(client, "admin")

    def listed(query: str) -> set[int]:
        page = admin.get(f"/hosts?{query}")
        assert page.status_code == 200, query
        return {int(i) for i in HOST_LINK.findall(page.text)}

    mail = extra["Mail_100%.d1.gov.vn#4"]
    assert listed("q=MAIL_100%25") == {mail}  # case-insensitive; % is a character, not a wildcard
    assert listed("q=_100") == {mail} and listed("q=p_d1") == set()  # _ is not a one-character wildcard
    assert listed("q=%25") == {mail}
    assert listed("level=4") == {mail} and listed("facing=yes") == {mail}
    assert mail not in listed("level=none") and world.web01 in listed("level=none")
    assert listed("stale=1") == {world.db02, extra["dup.d1.gov.vn#2"], extra["never.d1.gov.vn#3"]}
    assert listed("unit=P") == listed("")  # a province includes its departments
    assert listed("unit=D2") == {world.db02, extra["app.d2.gov.vn#5"]}
    warned = admin.get("/hosts?level=9&sort=<x>&after=not-a-token").text
    assert "không hợp lệ" in warned and "<x>" not in warned
    assert {int(i) for i in HOST_LINK.findall(warned)} == listed("")  # ignored: first page, every host
    client.cookies.clear()
    officer = h.logged_in(client, "officer1")
    for query in ("", "unit=D2", "unit=P", "stale=1", "sort=oldest", "q=d2"):
        text = officer.get(f"/hosts?{query}").text
        assert "db02.d2.gov.vn" not in text and "app.d2.gov.vn" not in text, query
    # A page token made under an admin's view reveals nothing more to an officer.
    assert "app.d2.gov.vn" not in officer.get("/hosts?unit=D2&q=app").text


def test_list_queries_do_not_grow_with_the_page(admin, db, world, monkeypatch):
    from sqlalchemy import event

    from console.routes import hosts as host_routes

    more_hosts(db)
    statements: list[tuple[str, object]] = []

    def count(_conn, _cursor, statement, parameters, *_args) -> None:
        statements.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        per_size = {}
        for size in (1, 4):
            monkeypatch.setattr(host_routes, "PAGE_SIZE", size)
            first = admin.get("/hosts").text
            statements.clear()
            # The second page: rows are skipped by the keyset condition, never by OFFSET.
            second = admin.get(html.unescape(PAGER_LINK["next"].search(first).group(1)))
            assert len(HOST_LINK.findall(second.text)) == size
            per_size[size] = len(statements)
            # SQLite's compiler always writes "LIMIT ? OFFSET ?"; the offset given must be 0.
            assert [p for s, p in statements if "OFFSET" in s.upper() and list(p)[-1] != 0] == []
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert per_size[1] == per_size[4]


def test_list_shows_open_findings_and_alerts_per_host(admin, db, world):
    from tests.console import hosts_helpers as hh

    hh.raise_alert(db, host_id=world.web01, rule_id="ssh-brute-force", group={"src_ip": "10.9.9.9"})
    text = admin.get("/hosts").text
    row = text[text.index("web01.d1.gov.vn"):]
    row = row[:row.index("</tr>")]
    assert re.findall(r'<td class="num">(\d+)', row) == ["0", "1"]  # open findings, open alerts
