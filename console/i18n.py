"""Console languages: Vietnamese first, English available; catalogues read from .po files at startup.

The .po files are the only source: they are compiled in memory when the console starts, so there is
no build step and no compiled .mo file to forget. The language comes from ``?lang=`` (remembered in a
cookie, and saved on the account of a logged-in viewer), else the logged-in person's saved language,
else that cookie, else Vietnamese. Accept-Language is deliberately ignored: the console is
for Vietnamese agencies, and a browser installed in English must not switch a civil servant's screen.
"""

from __future__ import annotations

import gettext
import io
from datetime import UTC, datetime, timedelta, timezone
from functools import cache
from pathlib import Path

from babel.dates import format_timedelta
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from starlette.requests import Request

LOCALE_DIR = Path(__file__).parent / "locale"
LANGUAGES: tuple[str, ...] = ("vi", "en")
DEFAULT_LANGUAGE = "vi"
LANG_COOKIE = "khien_lang"
LANG_PARAM = "lang"
# Vietnam has one time zone and no daylight saving: a fixed offset is exact.
VIETNAM_TIME = timezone(timedelta(hours=7), "ICT")


def po_files(lang: str) -> list[Path]:
    """A language's catalogue files: ``messages.po`` plus one file per console area (alerts.po, …)."""
    return sorted((LOCALE_DIR / lang / "LC_MESSAGES").glob("*.po"))


def read_catalogue(lang: str) -> Catalog:
    """Every .po file of a language merged into one catalogue; a message in two files is an error."""
    merged = Catalog(locale=lang)
    origin: dict[str, str] = {}
    for path in po_files(lang):
        with path.open("rb") as po:
            part = read_po(po, locale=lang)
        for message in part:
            if not message.id:
                continue  # the header
            key = message.id if isinstance(message.id, str) else message.id[0]
            if key in origin:
                raise ValueError(f"{path}: message {key!r} is already in {origin[key]}")
            origin[key] = str(path)
            merged[message.id] = message
    return merged


def load_catalogue(lang: str) -> gettext.NullTranslations:
    """The translations of one language, compiled in memory from its .po files (fuzzy entries skipped)."""
    catalogue = read_catalogue(lang)
    compiled = io.BytesIO()
    write_mo(compiled, catalogue)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


@cache
def translations(lang: str) -> gettext.NullTranslations:
    """Cached translations for a supported language code."""
    return load_catalogue(lang if lang in LANGUAGES else DEFAULT_LANGUAGE)


def load_all() -> None:
    """Read every catalogue now, so a broken .po file fails at startup rather than on a page view."""
    for lang in LANGUAGES:
        translations(lang)


def requested_language(request: Request) -> str | None:
    """The language asked for in the query string, if it is one we have."""
    lang = request.query_params.get(LANG_PARAM)
    return lang if lang in LANGUAGES else None


def saved_language(request: Request) -> str | None:
    """The logged-in viewer's saved language (console.deps puts it on the request), if any."""
    lang = getattr(request.state, "user_language", None)
    return lang if lang in LANGUAGES else None


def language_of(request: Request) -> str:
    """The language to render this request in: query, then the viewer's saved one, then cookie, then Vietnamese."""
    lang = requested_language(request) or saved_language(request) or request.cookies.get(LANG_COOKIE)
    return lang if lang in LANGUAGES else DEFAULT_LANGUAGE


def to_vietnam_time(value: datetime) -> datetime:
    """A stored UTC datetime shown on Vietnam's clock."""
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return aware.astimezone(VIETNAM_TIME)


def format_ago(value: datetime, *, now: datetime, lang: str) -> str:
    """'5 phút trước' / '5 minutes ago' for a past moment."""
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return format_timedelta(aware - now, locale=lang, add_direction=True, threshold=1.1)
