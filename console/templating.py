"""The console's one Jinja2 environment: autoescaped HTML, per-request gettext, display filters."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from babel.numbers import format_decimal
from jinja2 import Environment, FileSystemLoader, pass_context, select_autoescape
from jinja2.runtime import Context
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from collector.types import utcnow
from console import i18n

TEMPLATE_DIR = Path(__file__).parent / "templates"
LANG_COOKIE_MAX_AGE = int(timedelta(days=365).total_seconds())
SIZE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


@pass_context
def _gettext(context: Context, message: str) -> str:
    return i18n.translations(context["lang"]).gettext(message)


@pass_context
def _ngettext(context: Context, singular: str, plural: str, n: int) -> str:
    return i18n.translations(context["lang"]).ngettext(singular, plural, n)


@pass_context
def lang_url(context: Context, lang: str) -> str:
    """This page's path and query with ``lang`` switched (relative, so it works behind any proxy)."""
    request: Request = context["request"]
    params = [(k, v) for k, v in request.query_params.multi_items() if k != i18n.LANG_PARAM]
    return f"{request.url.path}?{urlencode([*params, (i18n.LANG_PARAM, lang)])}"


# Vietnamese writes day/month/year; the English pages keep the unambiguous ISO order.
TIME_FORMATS = {"vi": "%d/%m/%Y %H:%M", "en": "%Y-%m-%d %H:%M"}


@pass_context
def vietnam_time(context: Context, value: Any) -> str:
    """'01/03/2025 14:05' (Vietnamese) or '2025-03-01 14:05' on Vietnam's clock; anything that is not a
    datetime is shown as is."""
    if not isinstance(value, datetime):
        return "" if value is None else str(value)
    return i18n.to_vietnam_time(value).strftime(TIME_FORMATS.get(context.get("lang"), TIME_FORMATS["vi"]))


@pass_context
def ago(context: Context, value: Any) -> str:
    if not isinstance(value, datetime):
        return ""
    return i18n.format_ago(value, now=context["now"], lang=context["lang"])


@pass_context
def size(context: Context, value: Any) -> str:
    """Bytes in binary units ('7,8 GiB' in Vietnamese); agent values that are not numbers pass unchanged."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "" if value is None else str(value)
    amount, step = float(value), 0
    while abs(amount) >= 1024 and step < len(SIZE_UNITS) - 1:
        amount /= 1024
        step += 1
    pattern = "#,##0" if step == 0 else "#,##0.0"
    return f"{format_decimal(amount, format=pattern, locale=context['lang'])} {SIZE_UNITS[step]}"


def build_environment() -> Environment:
    """The environment: autoescape on for every .html template, gettext bound to the request's language."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        autoescape=select_autoescape(["html"], default_for_string=True),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_callables(_gettext, _ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.globals["lang_url"] = lang_url
    env.filters.update(vntime=vietnam_time, ago=ago, size=size)
    return env


templates = Jinja2Templates(env=build_environment())


def render(
    request: Request, name: str, context: Mapping[str, Any] | None = None, *, status_code: int = 200
) -> Response:
    """Render a page in the request's language; remember an explicit ``?lang=`` choice in a cookie."""
    lang = i18n.language_of(request)
    full = {"lang": lang, "languages": i18n.LANGUAGES, "now": utcnow(), **(context or {})}
    response = templates.TemplateResponse(request, name, full, status_code=status_code)
    # Pages carry unit data and CSRF tokens: never let a shared or back-button cache keep them.
    response.headers["Cache-Control"] = "no-store"
    if i18n.requested_language(request):
        response.set_cookie(i18n.LANG_COOKIE, lang, max_age=LANG_COOKIE_MAX_AGE, path="/", httponly=True,
                            samesite="lax", secure=request.app.state.settings.cookie_secure)
    return response
