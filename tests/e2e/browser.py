"""The helper API every browser flow uses: log in, go to a page, take a screenshot, and a watch that
fails the flow if any page opened a dialog (injected script ran) or broke the Content-Security-Policy.

A new flow is a few lines::

    def test_something(page):
        login(page, "analyst")
        go(page, "/alerts")
        expect(page.get_by_role("heading", level=1)).to_have_text("Cảnh báo")
        shot(page, "queue")

Every ``go`` and ``shot`` also checks the watch, so a problem is reported at the page that caused it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from weakref import WeakKeyDictionary

from playwright.sync_api import ConsoleMessage, Dialog, Page, Response, expect

from tests.e2e.seed import PASSWORD, USERS

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
DOWNLOADS = ARTIFACTS / "downloads"
# How Chromium reports a blocked inline script/style or off-site load on the console.
CSP_MESSAGE = re.compile(r"Content Security Policy|Content-Security-Policy", re.IGNORECASE)


@dataclass
class Watch:
    """What one page did that a flow must never see: dialogs, CSP violations, uncaught script errors."""

    test: str
    steps: int = 0
    dialogs: list[str] = field(default_factory=list)
    csp_violations: list[str] = field(default_factory=list)
    script_errors: list[str] = field(default_factory=list)

    def on_dialog(self, dialog: Dialog) -> None:
        # Only injected script could open a dialog (the console ships none): record it, and dismiss it
        # so the page does not hang; the flow fails at its next check.
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error" and CSP_MESSAGE.search(message.text):
            self.csp_violations.append(message.text)

    def on_page_error(self, error: Exception) -> None:
        self.script_errors.append(str(error))

    def problems(self) -> list[str]:
        return ([f"dialog opened: {d}" for d in self.dialogs]
                + [f"CSP violation: {c}" for c in self.csp_violations]
                + [f"script error: {e}" for e in self.script_errors])

    def assert_clean(self, where: str) -> None:
        problems = self.problems()
        assert not problems, f"{self.test} at {where}:\n" + "\n".join(problems)


_watches: WeakKeyDictionary[Page, Watch] = WeakKeyDictionary()


def watch(page: Page, test: str) -> Watch:
    """Start watching ``page`` for the test named ``test`` (the ``page`` fixture does this)."""
    w = Watch(test=_file_safe(test))
    page.on("dialog", w.on_dialog)
    page.on("console", w.on_console)
    page.on("pageerror", w.on_page_error)
    _watches[page] = w
    return w


def watch_of(page: Page) -> Watch:
    return _watches[page]


def shot(page: Page, name: str) -> Path:
    """Save a full-page screenshot as test-artifacts/screenshots/<test>-<NN>-<name>.png; check the watch."""
    w = watch_of(page)
    w.steps += 1
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{w.test}-{w.steps:02d}-{_file_safe(name)}.png"
    # After a click that navigates, the new document can already match an expect() while it is still
    # loading; Chromium then fails the capture ("Unable to capture screenshot", seen once in CI).
    page.wait_for_load_state()
    page.screenshot(path=str(path), full_page=True)
    w.assert_clean(f"step {w.steps} ({name}, {page.url})")
    return path


def go(page: Page, path: str, *, status: int = 200, name: str | None = None) -> Response:
    """Open ``path`` (relative to the server), check the final status, screenshot it."""
    response = page.goto(path)
    assert response is not None, path
    assert response.status == status, f"{path}: HTTP {response.status}, expected {status}"
    shot(page, name or path)
    return response


def login(page: Page, user: str, password: str = PASSWORD) -> None:
    """Log in through the form as ``user`` (a role key of seed.USERS, or a username); lands past /login."""
    fill_login(page, USERS.get(user, user), password)
    expect(page).not_to_have_url(re.compile(r"/login"))
    shot(page, f"logged-in-{user}")


def fill_login(page: Page, username: str, password: str) -> None:
    """Open the login form (unless already there), type the credentials and submit."""
    if "/login" not in page.url:
        go(page, "/login", name="login-form")
    page.locator("#username").fill(username)
    page.locator("#password").fill(password)
    page.locator("form.stacked button[type=submit]").click()
    page.wait_for_load_state()


def switch_language(page: Page, code: str) -> None:
    """Click the language switch in the top bar (each language is named in itself)."""
    page.locator(f"nav.langs a[hreflang={code}]").click()
    expect(page.locator("html")).to_have_attribute("lang", code)
    shot(page, f"lang-{code}")


def logout(page: Page) -> None:
    page.locator("form.logout button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    shot(page, "logged-out")


def _file_safe(text: str) -> str:
    """test_x[sqlite] -> test_x-sqlite; paths and odd characters become dashes."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "page"
