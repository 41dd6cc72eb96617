"""What the three web channels share: templates with Babel message catalogues,
signed session cookies (their expiry read on the injected clock), CSRF
tokens, and the plumbing that lets a route be ten lines: dependencies raise
``Redirect`` or a ``DomainError``, and one handler per channel
(``channel_route``) turns a ``DomainError`` into that channel's page with
its message."""

from __future__ import annotations

import base64
import dataclasses
import gettext
import hashlib
import hmac
import io
import json
import secrets
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, select_autoescape

from yibao.clock import CHINA
from yibao.domain.errors import DomainError
from yibao.runtime import Services
from yibao.services.documents import yuan

HERE = Path(__file__).parent
LOCALES = ("zh", "en")
LANG_COOKIE = "yb_lang"


@cache
def translations(lang: str) -> gettext.NullTranslations:
    """The catalogue for a language, compiled from its .po file on first use
    (so no build step is needed); Chinese is the source language."""
    po = HERE / "locale" / lang / "LC_MESSAGES" / "messages.po"
    if lang == "zh" or not po.exists():
        return gettext.NullTranslations()
    with po.open("rb") as fh:
        catalog = read_po(fh, locale=lang)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return gettext.GNUTranslations(buf)


def _date(value: Any, fmt: str = "%Y-%m-%d") -> str:
    if value is None:
        return ""
    if hasattr(value, "astimezone") and getattr(value, "tzinfo", None) is not None:
        value = value.astimezone(CHINA)
    return str(value.strftime(fmt))


@cache
def environment(lang: str) -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(["html"]),
        extensions=["jinja2.ext.i18n"],
    )
    env.install_gettext_translations(translations(lang), newstyle=True)  # type: ignore[attr-defined]
    env.filters["yuan"] = yuan
    env.filters["date"] = _date
    return env


def lang_of(request: Request) -> str:
    lang = request.query_params.get("lang") or request.cookies.get(LANG_COOKIE) or "zh"
    return lang if lang in LOCALES else "zh"


def tr(request: Request, message: str) -> str:
    """A message from code (rare: most text is in templates), in the page's language."""
    return translations(lang_of(request)).gettext(message)


# The database failed under a use case: the message for a machine client
# (resend the same msgid) says nothing to a person at a page.
OUTCOME_UNKNOWN = (
    "系统连接中断，本次操作是否完成未知。请刷新页面查看，再决定是否重试。",
    "the connection to the system broke, so whether this was done is unknown; "
    "reload the page to see before you try again",
)


def error_text(request: Request, exc: DomainError) -> str:
    zh, en = OUTCOME_UNKNOWN if exc.code == "system.outcome_unknown" else (exc.zh, exc.en)
    return en if lang_of(request) == "en" else zh


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    lang = lang_of(request)
    context.setdefault("message", None)
    context.setdefault("error", None)
    html = (
        environment(lang)
        .get_template(template)
        .render(request=request, lang=lang, html_lang="en" if lang == "en" else "zh-CN", **context)
    )
    response = HTMLResponse(html, status_code=status)
    if request.query_params.get("lang") in LOCALES:
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="lax", httponly=True)
    # pages show personal data: never cache them, never frame them
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    return response


def services_of(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


def now_ts(request: Request) -> float:
    """The injected clock's now, as seconds: what session expiries and the
    terminal's idle time are measured on, so that a test can move time."""
    return services_of(request).clock.now().timestamp()


# ---------------------------------------------------------------- one error handler per channel


class Redirect(Exception):
    """Raised by a dependency (not signed in, no terminal): go there instead.
    An HTMX request is told to load the page itself (``HX-Redirect``)."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.url = url

    def response(self, request: Request) -> Response:
        if request.headers.get("hx-request"):
            return Response(status_code=401, headers={"HX-Redirect": self.url})
        return RedirectResponse(self.url, status_code=303)


@dataclass(frozen=True)
class ErrorPage:
    """Where a route's refusals are shown: its template, the form fields
    shown again (never a secret), the context name of the message, the
    fragment an HTMX request swaps in instead of the page, and whether the
    page is only for a bad input (422: the form to correct), any other
    refusal (the person may not read this at all) going to the message page."""

    template: str
    keep: tuple[str, ...] = ()
    key: str = "error"
    fragment: str | None = None
    input_only: bool = False

    def shows(self, exc: DomainError) -> bool:
        return not self.input_only or exc.status == 422


F = TypeVar("F", bound=Callable[..., Any])


def refusals_on(
    template: str,
    *,
    keep: tuple[str, ...] = (),
    key: str = "error",
    fragment: str | None = None,
    input_only: bool = False,
) -> Callable[[F], F]:
    """Declare the page a route's ``DomainError`` is shown on (the channel's
    handler reads it); without it, the channel's message page."""

    def mark(endpoint: F) -> F:
        page = ErrorPage(template, keep, key, fragment, input_only)
        endpoint.error_page = page  # type: ignore[attr-defined]
        return endpoint

    return mark


OnError = Callable[[Request, DomainError, ErrorPage | None, dict[str, str]], Response]


def channel_route(on_error: OnError) -> type[APIRoute]:
    """A route class whose routes hand a ``DomainError`` (from the route or a
    dependency) to the channel's ``on_error``, with the route's declared
    page and the form's fields, and follow a ``Redirect``."""

    class ChannelRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handle = super().get_route_handler()
            page: ErrorPage | None = getattr(self.endpoint, "error_page", None)

            async def route(request: Request) -> Response:
                try:
                    return await handle(request)
                except Redirect as go:
                    return go.response(request)
                except DomainError as exc:
                    form = dict(request.query_params)
                    if request.method == "POST":
                        # starlette keeps the form it parsed for the route
                        data = await request.form()
                        form.update((k, v) for k, v in data.items() if isinstance(v, str))
                    # the handler may read the database (which terminal this
                    # is): off the event loop, like a route
                    return await run_in_threadpool(on_error, request, exc, page, form)

            return route

    return ChannelRoute


# ---------------------------------------------------------------- signed cookies


def _key(request: Request, purpose: str) -> bytes:
    secret = services_of(request).settings.effective_secret_key
    return hashlib.sha256(f"yibao-web:{purpose}:{secret}".encode()).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(request: Request, purpose: str, data: dict[str, Any]) -> str:
    body = _b64(json.dumps(data, separators=(",", ":")).encode())
    mac = _b64(hmac.new(_key(request, purpose), body.encode(), hashlib.sha256).digest())
    return f"{body}.{mac}"


def unsign(request: Request, purpose: str, value: str | None) -> dict[str, Any] | None:
    if not value or "." not in value:
        return None
    body, mac = value.rsplit(".", 1)
    good = _b64(hmac.new(_key(request, purpose), body.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(mac, good):
        return None
    try:
        data = json.loads(_unb64(body))
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def set_strict_cookie(
    request: Request, response: Response, name: str, value: str, max_age: int, path: str
) -> None:
    """A cookie only this site's own pages send: HttpOnly, SameSite=Strict,
    Secure unless configured off."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=path,
        httponly=True,
        samesite="strict",
        secure=services_of(request).settings.cookie_secure,
    )


class WebSession:
    """A signed cookie holding a channel's session: who is in, the CSRF token
    and when it ends. HttpOnly, SameSite=Strict, Secure unless configured off."""

    def __init__(self, name: str, path: str, max_age: int) -> None:
        self.name = name
        self.path = path
        self.max_age = max_age

    def load(self, request: Request) -> dict[str, Any]:
        data = unsign(request, self.name, request.cookies.get(self.name))
        if data is None or float(data.get("exp", 0)) < now_ts(request):
            return {}
        return data

    def save(self, request: Request, response: Response, data: dict[str, Any]) -> None:
        data = dict(data)
        data.setdefault("csrf", secrets.token_urlsafe(24))
        data["exp"] = now_ts(request) + self.max_age
        set_strict_cookie(
            request, response, self.name, sign(request, self.name, data), self.max_age, self.path
        )

    def clear(self, response: Response) -> None:
        response.delete_cookie(self.name, path=self.path)


def csrf_ok(session: dict[str, Any], given: str | None) -> bool:
    token = session.get("csrf")
    return bool(token) and bool(given) and hmac.compare_digest(str(token), str(given))


def require_csrf(session: dict[str, Any], given: str | None) -> None:
    if not csrf_ok(session, given):
        raise dataclasses.replace(CSRF_REFUSED)


CSRF_REFUSED = DomainError(
    code="web.csrf",
    zh="页面已过期，请刷新后重试",
    en="the page has expired; reload it and try again",
    status=403,
)
