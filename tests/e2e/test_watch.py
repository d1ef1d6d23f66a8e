"""The watch every flow relies on really catches what it is there for (else a flow could pass blind).

Pages here are served by Playwright's router under the live server's address, so the check sees
exactly what a console page with injected markup would produce, without changing the console.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, Route

from tests.e2e.browser import go, watch_of
from tests.e2e.server import LiveServer

CSP = "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"


def serve(page: Page, server: LiveServer, path: str, html: str, headers: dict[str, str]) -> None:
    def fulfil(route: Route) -> None:
        route.fulfill(status=200, body=html, headers={"Content-Type": "text/html; charset=utf-8", **headers})

    page.route(f"{server.url}{path}", fulfil)


def test_an_inline_script_blocked_by_the_policy_is_reported(page: Page, server: LiveServer):
    serve(page, server, "/injected", "<p>x</p><script>alert(1)</script><p style='color:red'>y</p>",
          {"Content-Security-Policy": CSP})
    page.goto("/injected")
    page.wait_for_load_state()
    watch = watch_of(page)
    assert watch.dialogs == []  # the policy stopped the script...
    assert any("inline script" in v for v in watch.csp_violations), watch.csp_violations  # ...and said so
    with pytest.raises(AssertionError, match="CSP violation"):
        watch.assert_clean("injected")
    watch.csp_violations.clear()  # handled: the fixture's final check must not fail this test


def test_a_script_that_runs_and_opens_a_dialog_is_reported(page: Page, server: LiveServer):
    serve(page, server, "/unprotected", "<p>x</p><script>alert('xss')</script>", {})
    with pytest.raises(AssertionError, match="dialog opened: alert: xss"):
        go(page, "/unprotected", name="unprotected")
    watch_of(page).dialogs.clear()
