"""What the web channels share: templates with Babel message catalogues,
the security headers of every page, the cookies (a server session's id; the
signed state of the pages before anyone signs in, its expiry read on the
injected clock), CSRF tokens, the sessions of the portal and the
employer's channel (``SessionPages``), and the plumbing that lets a route be ten
lines: dependencies (the parsing layer of ``forms`` among them) raise
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
import ipaddress
import json
import logging
import secrets
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Generic, Protocol, TypeVar

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.datastructures import FormData, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from yibao.channels.web.forms import csrf_given
from yibao.clock import CHINA
from yibao.domain import values
from yibao.domain.errors import DomainError, invalid
from yibao.runtime import Services
from yibao.services.access.web_sessions import TOKEN_LENGTH
from yibao.services.documents import yuan
from yibao.store.uow import UnitOfWork

log = logging.getLogger("yibao")

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
    # a channel that keeps the language itself (the terminal: each card
    # session starts in Chinese) says so in ``request.state.lang``
    kept = getattr(request.state, "lang", None)
    lang = request.query_params.get("lang") or kept or request.cookies.get(LANG_COOKIE) or "zh"
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
        # Secure like the session cookies (settings.cookie_secure): a cookie
        # set over HTTPS is never sent over plain HTTP, where it could be
        # read or replaced on the way
        response.set_cookie(
            LANG_COOKIE,
            lang,
            max_age=365 * 86400,
            samesite="lax",
            httponly=True,
            secure=services_of(request).settings.cookie_secure,
        )
    return response


def services_of(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


def now_ts(request: Request) -> float:
    """The injected clock's now, as seconds: what session expiries and the
    terminal's idle time are measured on, so that a test can move time."""
    return services_of(request).clock.now().timestamp()


# ---------------------------------------------------------------- headers of every page

# Scripts and styles only from yibao's own /web-static/ files: no inline
# script, no inline style, no eval, nothing from another site; the pages are
# never framed and never post anywhere else. A page that an attacker manages
# to inject markup into still runs none of the attacker's script.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}
WEB_PREFIXES = ("/portal", "/kiosk", "/counter", "/employer", "/web-static", "/public")
# pages at one path alone: the start page (a prefix "/" would be every path)
WEB_PATHS = ("/",)


def _is_web(path: str) -> bool:
    return path in WEB_PATHS or any(path == p or path.startswith(p + "/") for p in WEB_PREFIXES)


class SecurityHeaders:
    """ASGI middleware: every answer under the web channels' paths (a page, a
    refusal, a redirect, a PDF, a static file, a 404) carries the security
    headers; every one but a static file is never cached, as pages show
    personal data."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _is_web(scope["path"]):
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith("/web-static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
                if not static:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)


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
        return see_other(self.url)


def see_other(url: str) -> RedirectResponse:
    """Go there with a GET (after a form, the page it leads to)."""
    return RedirectResponse(url, status_code=303)


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

    def kept(self, form: dict[str, str]) -> dict[str, str]:
        """The fields shown again, from the request's."""
        return {name: form.get(name, "") for name in self.keep}


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

    return on_refusal(ErrorPage(template, keep, key, fragment, input_only))


def on_refusal(page: object) -> Callable[[F], F]:
    """Declare what the channel's handler shows a route's refusals with."""

    def mark(endpoint: F) -> F:
        endpoint.error_page = page  # type: ignore[attr-defined]
        return endpoint

    return mark


# A channel's one handler of refusals: the request, the refusal, what the
# route declared (an ``ErrorPage`` for the portal and the terminal, a handler
# for the counter) and the request's path, query and form fields.
OnError = Callable[[Request, DomainError, Any, dict[str, str]], Response]


def no_such_page() -> DomainError:
    """Any other path under a channel's prefix: a page that says so, not JSON."""
    return DomainError(
        code="web.not_found", zh="没有这个页面", en="there is no such page", status=404
    )


def _malformed(exc: RequestValidationError) -> DomainError:
    """FastAPI's own validation, should a value reach it: named like ours."""
    loc = exc.errors()[0].get("loc", ()) if exc.errors() else ()
    names = [str(p) for p in loc if p not in ("body", "query", "path", "header", "form")]
    return invalid(".".join(names) or "form", "格式错误", "malformed", "format")


FAULT = DomainError(
    code="internal",
    zh="系统内部错误，请稍后再试",
    en="internal error; please try again later",
    status=500,
)


def _last_resort(request: Request, exc: DomainError) -> Response:
    """The channel's handler itself failed (the database went away while it
    drew the page): the message on the bare page, never a stack trace."""
    return render(request, "base.html", exc.status, error=error_text(request, exc))


def channel_route(on_error: OnError) -> type[APIRoute]:
    """A route class whose routes hand a ``DomainError`` (from the route, a
    dependency or the parsing layer) to the channel's ``on_error``, with the
    route's declared page and the request's fields, and follow a ``Redirect``."""

    class ChannelRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handle = super().get_route_handler()
            page: Any = getattr(self.endpoint, "error_page", None)

            async def route(request: Request) -> Response:
                try:
                    try:
                        return await handle(request)
                    except RequestValidationError as bad:
                        raise _malformed(bad) from None
                except Redirect as go:
                    return go.response(request)
                except DomainError as refused:
                    exc = _cookie_not_kept(request, refused) or refused
                    fields = {k: v for k, v in request.path_params.items() if isinstance(v, str)}
                    fields.update(request.query_params)
                    if request.method == "POST":
                        try:  # starlette keeps the form it parsed for the route
                            data = await request.form()
                        except Exception:
                            # a form that could not be read (malformed, too
                            # large) is not read again: the refusal says so,
                            # and no field is shown again
                            data = FormData()
                        fields.update((k, v) for k, v in data.items() if isinstance(v, str))
                    # the handler may read the database (which terminal this
                    # is): off the event loop, like a route
                    try:
                        return await run_in_threadpool(on_error, request, exc, page, fields)
                    except Redirect as go:
                        return go.response(request)
                    except DomainError as again:
                        return await run_in_threadpool(_last_resort, request, again)
                except HTTPException:
                    raise  # starlette's own answers (a 404 of its router, ...)
                except Exception:
                    # A fault of yibao's: logged with its trace for operators; the
                    # person gets a page (with the pages' headers), not JSON
                    log.exception("unhandled error on %s %s", request.method, request.url.path)
                    return await run_in_threadpool(_last_resort, request, FAULT)

            return route

    return ChannelRoute


def _loopback(host: str | None) -> bool:
    """Whether a browser treats the address as this machine (a secure
    context, where it keeps a Secure cookie sent over plain HTTP)."""
    if not host:
        return False
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _cookie_not_kept(request: Request, exc: DomainError) -> DomainError | None:
    """A form posted with no cookie at all, over plain HTTP, to an address
    that is not this machine, while the cookies are Secure: the browser never
    kept the cookie the form's page set, so "the page has expired" would send
    the person round in circles. Say what would work instead. A page that
    really expired still sends some cookie (or came over HTTPS, or from
    loopback) and keeps its own message."""
    if (
        exc.code != CSRF_REFUSED.code
        or request.method != "POST"
        or request.url.scheme != "http"
        or request.cookies
        or _loopback(request.url.hostname)
        or not services_of(request).settings.cookie_secure
    ):
        return None
    return dataclasses.replace(COOKIE_NEEDS_HTTPS)


# ---------------------------------------------------------------- cookies


def _key(request: Request, purpose: str) -> bytes:
    secret = services_of(request).settings.effective_secret_key
    return hashlib.sha256(f"yibao-web:{purpose}:{secret}".encode()).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# A cookie of ours is a few hundred characters; a longer one is no cookie of ours.
COOKIE_MOST = 4096


def sign(request: Request, purpose: str, data: dict[str, Any]) -> str:
    body = _b64(json.dumps(data, separators=(",", ":")).encode())
    mac = _b64(hmac.new(_key(request, purpose), body.encode(), hashlib.sha256).digest())
    return f"{body}.{mac}"


def unsign(request: Request, purpose: str, value: str | None) -> dict[str, Any] | None:
    """The data of a cookie we signed; None for anything else, whatever the
    client sent (non-ASCII bytes, garbage, a forged or truncated value)."""
    if not value or len(value) > COOKIE_MOST or not value.isascii() or "." not in value:
        return None
    body, mac = value.rsplit(".", 1)
    good = _b64(hmac.new(_key(request, purpose), body.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(mac.encode(), good.encode()):
        return None
    try:
        data = json.loads(_unb64(body))
    except ValueError:  # binascii.Error and UnicodeDecodeError among them
        return None
    return data if isinstance(data, dict) else None


def set_strict_cookie(
    request: Request, response: Response, name: str, value: str, max_age: int | None, path: str
) -> None:
    """A cookie only this site's own pages send: HttpOnly, SameSite=Strict,
    Secure unless configured off. Without ``max_age`` it ends with the
    browser (the server ends the session long before, in any case)."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=path,
        httponly=True,
        samesite="strict",
        secure=services_of(request).settings.cookie_secure,
    )


class SignedCookie:
    """A signed cookie holding a channel's state before anyone signs in (the
    log-in form's CSRF token; at a terminal, the card read before its PIN)
    and when it ends. Nothing in it opens anything: who is signed in is the
    server's ``SessionCookie``."""

    def __init__(self, name: str, path: str, max_age: int) -> None:
        self.name = name
        self.path = path
        self.max_age = max_age

    def load(self, request: Request) -> dict[str, Any]:
        data = unsign(request, self.name, request.cookies.get(self.name))
        exp = data.get("exp") if data else None
        if data is None or not isinstance(exp, int | float) or exp < now_ts(request):
            return {}
        data.pop("exp")
        return data

    def save(self, request: Request, response: Response, data: dict[str, Any]) -> None:
        data = dict(data)
        data.setdefault("csrf", new_csrf())
        data["exp"] = now_ts(request) + self.max_age
        set_strict_cookie(
            request, response, self.name, sign(request, self.name, data), self.max_age, self.path
        )

    def clear(self, response: Response) -> None:
        response.delete_cookie(self.name, path=self.path)


class SessionCookie:
    """The cookie of a session kept on the server: only the session's random
    id, which the server keeps as its SHA-256 (services/access/web_sessions).

    It is not signed: the id is 256 random bits, so a signature would add no
    secrecy, and the server's row, not the cookie, says whether the session
    is live. A value of another shape is no session and costs no query."""

    def __init__(self, name: str, path: str) -> None:
        self.name = name
        self.path = path

    def token(self, request: Request) -> str | None:
        value = request.cookies.get(self.name)
        try:
            token = values.token(value, field=self.name, most=TOKEN_LENGTH)
        except DomainError:
            return None
        return token if len(token) == TOKEN_LENGTH else None

    def set(self, request: Request, response: Response, token: str) -> None:
        set_strict_cookie(request, response, self.name, token, None, self.path)

    def clear(self, response: Response) -> None:
        response.delete_cookie(self.name, path=self.path)


def new_csrf() -> str:
    return secrets.token_urlsafe(24)


def csrf_ok(expected: str | None, given: str | None) -> bool:
    if not expected or not given:
        return False
    # bytes: compare_digest refuses a str with non-ASCII characters (a 500)
    return hmac.compare_digest(expected.encode(), given.encode())


def require_csrf(expected: str | None, given: str | None) -> None:
    if not csrf_ok(expected, given):
        raise dataclasses.replace(CSRF_REFUSED)


CSRF_REFUSED = DomainError(
    code="web.csrf",
    zh="页面已过期，请刷新后重试",
    en="the page has expired; reload it and try again",
    field="csrf",
    status=403,
)

COOKIE_NEEDS_HTTPS = DomainError(
    code="web.cookie_needs_https",
    zh="浏览器没有保存登录所需的安全Cookie：通过普通HTTP从另一台电脑访问时，它不会被保存。"
    "请用 https:// 打开本站（在前面配置TLS）；在可信的内部网络上，也可由管理员设置 "
    "YIBAO_COOKIE_SECURE=false。",
    en="the browser did not keep the session cookie: it is Secure, so it is not kept over "
    "plain HTTP from another machine. Open this site with https:// (TLS in front of yibao); "
    "on a trusted network, the operator may set YIBAO_COOKIE_SECURE=false instead.",
    field="csrf",
    status=403,
)


# ---------------------------------------------------------------- a channel's sessions on the server


class LiveSession(Protocol):
    """A live session of a channel: the token its forms carry (and whose it is)."""

    @property
    def csrf(self) -> str: ...


S = TypeVar("S", bound=LiveSession)
S_co = TypeVar("S_co", bound=LiveSession, covariant=True)
P = TypeVar("P")


class SessionOf(Protocol[S_co]):
    """A channel's use case that finds the live session behind a cookie's id."""

    def __call__(self, uow: UnitOfWork, /, *, token: str | None) -> S_co | None: ...


class SessionPages(Generic[S, P]):
    """The session plumbing of a channel whose signed-in party (the portal's
    person, an employer) has a session kept on the server, of which
    ``cookie`` carries only the id; before log-in the signed ``anonymous``
    cookie holds the forms' CSRF token, and nothing that opens anything.

    ``session_of`` finds the live session, once per request; ``party`` is
    whose it is; ``me``, if given, the name under which every page of a
    live session is handed that party; ``message`` the page of a refusal no
    route's page shows; ``login`` where a browser with no session goes."""

    def __init__(
        self,
        *,
        cookie: SessionCookie,
        anonymous: SignedCookie,
        session_of: SessionOf[S],
        party: Callable[[S], P],
        login: str,
        message: ErrorPage,
        me: str | None = None,
    ) -> None:
        self.cookie = cookie
        self.anonymous = anonymous
        self.session_of = session_of
        self.party = party
        self.login = login
        self.message = message
        self.me = me

    def live(self, request: Request) -> S | None:
        """This browser's live session, looked up once per request. If the
        lookup fails (the database went away), the first caller gets the
        refusal and the error page is drawn without a session."""
        if hasattr(request.state, "web_session"):
            live: S | None = request.state.web_session
            return live
        request.state.web_session = None
        token = self.cookie.token(request)
        if token is not None:
            request.state.web_session = self.session_of(services_of(request).uow(), token=token)
            request.state.web_session_ended = request.state.web_session is None
        return self.live(request)

    def expected_csrf(self, request: Request) -> str | None:
        """The token this browser's forms carry: its session's, else the log-in form's."""
        live = self.live(request)
        if live is not None:
            return live.csrf
        token = self.anonymous.load(request).get("csrf")
        return token if isinstance(token, str) else None

    def page(self, request: Request, template: str, status: int = 200, **context: Any) -> Response:
        """Render with the CSRF token of this browser's forms, giving an
        anonymous browser one; a cookie of a session that ended is dropped."""
        try:
            live = self.live(request)
        except DomainError:  # the database went away: the page says so, with no session
            live = None
        if live is not None:
            if self.me is not None:
                context.setdefault(self.me, self.party(live))
            return render(request, template, status, csrf=live.csrf, **context)
        token = self.anonymous.load(request).get("csrf")
        fresh = not isinstance(token, str)
        csrf = new_csrf() if fresh else str(token)
        response = render(request, template, status, csrf=csrf, **context)
        if fresh:
            self.anonymous.save(request, response, {"csrf": csrf})
        if getattr(request.state, "web_session_ended", False):
            self.cookie.clear(response)
        return response

    def shown(self, page: ErrorPage | None, exc: DomainError) -> ErrorPage:
        """Where the error handler shows a refusal: the route's page, else the message page."""
        return page if page is not None and page.shows(exc) else self.message

    def signed_in(self, request: Request) -> P:
        """A dependency: whose this browser's live session is, or to the log-in page."""
        live = self.live(request)
        if live is None:
            raise Redirect(self.login)
        party = self.party(live)
        request.state.signed_in = party  # for the error handler's menu
        return party

    def who(self, request: Request) -> P | None:
        """The party ``signed_in`` found for this request's route, if it has one."""
        party: P | None = getattr(request.state, "signed_in", None)
        return party

    def checked(self, request: Request, given: Annotated[str, Depends(csrf_given)]) -> None:
        """A dependency: a form of the channel's own pages, with the token of this browser's forms."""
        require_csrf(self.expected_csrf(request), given)

    def opened(self, request: Request, token: str, url: str) -> Response:
        """Signed in: on to ``url`` in a new session on the server, with a new
        CSRF token; the log-in form's is done."""
        response = see_other(url)
        self.cookie.set(request, response, token)
        self.anonymous.clear(response)
        return response

    def renewed(
        self, request: Request, live: S, token: str, template: str, **context: Any
    ) -> Response:
        """A new password ended every session of the party, this browser's
        too: it goes on in the new one (``live``, with its new CSRF token,
        ``token`` the cookie's id)."""
        request.state.web_session = live
        response = self.page(request, template, **context)
        self.cookie.set(request, response, token)
        return response

    def log_out(self, request: Request, given: str, end: Callable[[str | None], None]) -> Response:
        """To the log-in page; the session ends (``end``, with the cookie's
        id) only for a form of its own: a forged log-out does nothing."""
        response = see_other(self.login)
        live = self.live(request)
        if live is not None and csrf_ok(live.csrf, given):
            end(self.cookie.token(request))
            self.cookie.clear(response)
        return response
