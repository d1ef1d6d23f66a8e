"""Security headers on every console response, and templates that a strict CSP can allow."""

from __future__ import annotations

import re
from pathlib import Path

from tests.console import helpers as h

TEMPLATES = Path(__file__).parents[2] / "console" / "templates"
EXPECTED = {
    "content-security-policy": "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
}


def assert_secure_headers(response) -> None:
    for name, value in EXPECTED.items():
        assert response.headers.get(name) == value, (response.request.url, name)


def test_headers_on_pages_static_files_redirects_and_errors(client, world):
    assert_secure_headers(client.get("/login"))
    assert_secure_headers(client.get("/hosts", follow_redirects=False))
    assert_secure_headers(client.get("/static/khien.css"))
    assert_secure_headers(client.post("/logout", follow_redirects=False))
    h.logged_in(client, "officer1")
    hosts = client.get("/hosts")
    assert_secure_headers(hosts)
    assert hosts.headers["cache-control"] == "no-store"
    assert_secure_headers(client.get(f"/hosts/{world.db02}"))  # the 404 page


def test_templates_have_no_inline_script_or_style():
    for template in TEMPLATES.glob("*.html"):
        source = re.sub(r"\{#.*?#\}", "", template.read_text(encoding="utf-8"), flags=re.S)  # drop comments
        assert "<script" not in source, template.name
        assert not re.search(r"\sstyle\s*=", source), template.name
        assert not re.search(r"\son[a-z]+\s*=", source), template.name
        assert "|safe" not in source.replace(" ", ""), template.name
