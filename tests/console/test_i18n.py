"""Languages: Vietnamese by default, English on request, and a complete Vietnamese catalogue."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir

from console import i18n
from tests.console import helpers as h

CONSOLE = Path(__file__).parents[2] / "console"


def template_msgids() -> set[str]:
    """Every message the templates ask to translate, found the way pybabel finds them."""
    found = extract_from_dir(str(CONSOLE), method_map=[("templates/**.html", "jinja2")],
                             options_map={"templates/**.html": {"extensions": "jinja2.ext.i18n"}})
    return {message if isinstance(message, str) else message[0] for _, _, message, _, _ in found}


def catalogue(lang: str):
    """Every .po file of the language merged, as the console reads them."""
    return i18n.read_catalogue(lang)


def test_a_message_in_two_catalogue_files_is_refused(tmp_path, monkeypatch):
    folder = tmp_path / "vi" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    (folder / "messages.po").write_text('msgid "Hosts"\nmsgstr "Máy chủ"\n', encoding="utf-8")
    (folder / "alerts.po").write_text('msgid "Alerts"\nmsgstr "Cảnh báo"\n\nmsgid "Hosts"\nmsgstr "Máy"\n',
                                      encoding="utf-8")
    monkeypatch.setattr(i18n, "LOCALE_DIR", tmp_path)
    try:
        i18n.read_catalogue("vi")
    except ValueError as exc:
        assert "messages.po" in str(exc) and "alerts.po" in str(exc) and "'Hosts'" in str(exc)
    else:
        raise AssertionError("a duplicate message was accepted")
    (folder / "alerts.po").write_text('msgid "Alerts"\nmsgstr "Cảnh báo"\n', encoding="utf-8")
    merged = i18n.read_catalogue("vi")
    assert merged["Alerts"].string == "Cảnh báo" and merged["Hosts"].string == "Máy chủ"


def test_every_template_string_has_a_vietnamese_translation():
    msgids = template_msgids()
    assert len(msgids) > 50  # extraction really ran over the templates
    vi = catalogue("vi")
    untranslated = sorted(m for m in msgids if m not in vi or not vi[m].string or vi[m].fuzzy)
    assert untranslated == []


def test_english_catalogue_lists_the_same_messages():
    msgids = template_msgids()
    en = catalogue("en")
    assert sorted(m for m in msgids if m not in en) == []


def test_vietnamese_is_the_default_even_for_an_english_browser(client):
    page = client.get("/login", headers={"Accept-Language": "en-US,en;q=0.9"})
    assert '<html lang="vi">' in page.text
    assert "Đăng nhập" in page.text and "Tên đăng nhập" in page.text


def test_lang_en_switches_and_is_remembered(client):
    page = client.get("/login?lang=en")
    assert '<html lang="en">' in page.text and "Log in" in page.text and "Đăng nhập" not in page.text
    assert "khien_lang=en" in " ".join(page.headers.get_list("set-cookie"))
    assert "Username" in client.get("/login").text  # the cookie keeps English
    assert "Tên đăng nhập" in client.get("/login?lang=vi").text


def test_unknown_language_falls_back_to_vietnamese(client):
    page = client.get("/login?lang=fr")
    assert '<html lang="vi">' in page.text
    assert "khien_lang" not in " ".join(page.headers.get_list("set-cookie"))


def test_english_host_pages_and_error_messages(client, world):
    client.get("/login?lang=en")
    failed = h.login(client, "officer1", "not the password at all")
    assert "Wrong username or password." in failed.text
    h.logged_in(client, "officer1")
    page = client.get(f"/hosts/{world.web01}").text
    for expected in ("Listening ports", "Software packages", "Recent changes", "Package upgraded", "8.0 GiB"):
        assert expected in page, expected


def test_language_switch_keeps_the_current_page_and_query(admin):
    page = admin.get("/hosts?unit=D1").text
    assert 'href="/hosts?unit=D1&amp;lang=en"' in page
