"""Host pages: unit scoping, the stale marker, inventory tables, change events, escaping."""

from __future__ import annotations

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
