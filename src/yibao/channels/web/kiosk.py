"""The self-service terminal under /kiosk/: card reader, PIN keypad, balance,
last transactions and a receipt; it forgets the person after an idle minute
(measured on the injected clock).

A browser is a terminal only once it has activated itself with a one-time code
from staff: it then holds a device cookie, and each request finds its
terminal by that cookie's token alone (the ``terminal`` dependency).

A right PIN opens a session on the server (``terminals.sign_in``), bound to
this terminal and the card: the ``yb_kiosk_session`` cookie carries only its
id. Taking the card out, the start page, a refusal and the idle time end it,
so that a copy of the cookie opens nothing afterwards. The forms that change
anything (activation, card, PIN) come before the PIN, with the CSRF token of
the signed ``yb_kiosk`` cookie.

What the terminal shows is the account summary of the card presented
(``services.inquiry``): a lost, frozen, cancelled or replaced card, or a
person whose insurance has ended, opens nothing, and the refusal says why.
A refusal (``DomainError``) is shown by ``_refused``: on the set-up page, the
PIN page, or back at the start with the person forgotten."""

from __future__ import annotations

import contextlib
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from yibao.channels.web import forms
from yibao.channels.web.common import (
    LOCALES,
    ErrorPage,
    Redirect,
    SessionCookie,
    SignedCookie,
    channel_route,
    error_text,
    new_csrf,
    no_such_page,
    now_ts,
    refusals_on,
    render,
    require_csrf,
    see_other,
    services_of,
    set_strict_cookie,
)
from yibao.domain.actors import Channel
from yibao.domain.errors import DomainError
from yibao.domain.use import Named, Presenter
from yibao.services.access import terminals
from yibao.services.access.terminals import KioskSession, TerminalView, terminal_actor
from yibao.services.inquiry import records
from yibao.services.inquiry.summary import account_summary

# The person signed in with the card's PIN: a session on the server, of which
# this cookie carries only the id.
SESSION = SessionCookie("yb_kiosk_session", "/kiosk")
# Before the PIN: the forms' CSRF token, the card read and when (forgotten
# once idle). Signed, and nothing in it opens anything.
ANONYMOUS = SignedCookie("yb_kiosk", "/kiosk", 24 * 3600)
STATE_KEYS = ("csrf", "card", "seen", "lang", "lang_at")
CARD_KEYS = ("card", "seen")
# The language the person at the terminal chose, and when it was last used:
# it lasts their card session only (退卡 and the idle time end it, the start
# page's idle timer taking the card out too), so that the next person starts
# in Chinese. The year-long language
# cookie of the other channels is not read here.
LANG_KEYS = ("lang", "lang_at")
DEVICE_COOKIE = "yb_kiosk_device"
# Browsers keep a cookie at most 400 days; each visit to the start page renews it.
DEVICE_MAX_AGE = 400 * 86400

SETUP = "kiosk/setup.html"
PIN = "kiosk/pin.html"

NOT_ACTIVATED = DomainError(
    code="kiosk.device_revoked",
    zh="本机的终端凭证已失效，请工作人员签发新激活码后重新激活",
    en="this machine's terminal credential is no longer valid; activate it with a new code",
    status=401,
)


def _idle(request: Request) -> int:
    return services_of(request).settings.kiosk_idle_seconds


def _state(request: Request) -> dict[str, Any]:
    """The terminal's state before the PIN; the card read is forgotten once
    idle too long. Anything else an old cookie held (a person, a terminal)
    is no longer believed."""
    data = {k: v for k, v in ANONYMOUS.load(request).items() if k in STATE_KEYS}
    seen = data.get("seen")
    if not isinstance(seen, int | float) or now_ts(request) - float(seen) > _idle(request):
        _forget(data)
    return data


def _forget(data: dict[str, Any]) -> None:
    for key in CARD_KEYS:
        data.pop(key, None)


def _language(request: Request) -> None:
    """This request's language (``common.lang_of`` reads it): the one asked
    for (``?lang=``), else the one this card session chose while it is not
    idle, else Chinese."""
    data = ANONYMOUS.load(request)
    asked = request.query_params.get("lang")
    kept, at = data.get("lang"), data.get("lang_at")
    fresh = isinstance(at, int | float) and now_ts(request) - float(at) <= _idle(request)
    lang = asked if asked in LOCALES else kept if fresh and kept in LOCALES else "zh"
    request.state.lang = lang


def _new_session(request: Request, data: dict[str, Any]) -> None:
    """The card is taken out: the terminal waits for the next card in
    Chinese, whatever the last person chose."""
    for key in LANG_KEYS:
        data.pop(key, None)
    request.state.lang = "zh"


def _page(
    request: Request, data: dict[str, Any], template: str, status: int = 200, **context: Any
) -> Response:
    data.setdefault("csrf", new_csrf())
    data["lang"] = getattr(request.state, "lang", "zh")
    data["lang_at"] = now_ts(request)
    response = render(
        request,
        template,
        status,
        csrf=data["csrf"],
        idle_seconds=_idle(request),
        body_class="kiosk",
        **context,
    )
    ANONYMOUS.save(request, response, data)
    return response


def _sign_out(request: Request, response: Response) -> None:
    """The person signed in here is forgotten: the session ends on the server."""
    token = SESSION.token(request)
    if token is not None:
        terminals.sign_out(services_of(request).uow(), token=token)
    if request.cookies.get(SESSION.name) is not None:
        SESSION.clear(response)


def _set_device(request: Request, response: Response, token: str) -> None:
    set_strict_cookie(request, response, DEVICE_COOKIE, token, DEVICE_MAX_AGE, "/kiosk")


def _this_terminal(request: Request) -> TerminalView | None:
    """The terminal this machine activated itself as; nothing the request names."""
    if not hasattr(request.state, "terminal"):
        request.state.terminal = None  # should the lookup fail, it is not tried again
        request.state.terminal = terminals.terminal_of_device(
            services_of(request).uow(), request.cookies.get(DEVICE_COOKIE)
        )
    term: TerminalView | None = request.state.terminal
    return term


def _setup(
    request: Request,
    data: dict[str, Any],
    status: int = 200,
    *,
    terminal_code: str = "",
    activation_code: str = "",
    error: DomainError | None = None,
) -> Response:
    """The set-up page: the terminal code and the activation code staff issued.

    A device cookie that binds to no terminal any more (a new code was issued,
    or the terminal was deactivated) is said so and dropped; a good one is
    kept, so that a mistyped code never unbinds a working machine."""
    term = _this_terminal(request)
    revoked = term is None and bool(request.cookies.get(DEVICE_COOKIE))
    if error is None and revoked:
        error = NOT_ACTIVATED
    _forget(data)
    response = _page(
        request,
        data,
        SETUP,
        status,
        terminal=term,
        terminal_code=terminal_code,
        activation_code=activation_code,
        error=error_text(request, error) if error else None,
        field=error.field if error else None,
    )
    if revoked:
        response.delete_cookie(DEVICE_COOKIE, path="/kiosk")
    if request.cookies.get(SESSION.name) is not None:
        SESSION.clear(response)  # its session ended with the machine's credential
    return response


def _refused(
    request: Request, exc: DomainError, page: ErrorPage | None, form: dict[str, str]
) -> Response:
    """The terminal's one error handler. A refused activation stays on the
    set-up page; a wrong PIN on the PIN page; anything else (an unknown or
    blocked card, a card that opens nothing) goes back to the start, the card
    and the person forgotten."""
    data = _state(request)
    text = error_text(request, exc)
    try:
        term = _this_terminal(request)
    except DomainError:  # the database is gone: say so, and nothing else
        _forget(data)
        return _page(request, data, "kiosk/start.html", exc.status, terminal=None, error=text)
    if term is None or (page is not None and page.template == SETUP):
        return _setup(request, data, exc.status, terminal_code=form.get("terminal", ""), error=exc)
    if page is not None and page.template == PIN and exc.code != "kiosk.blocked":
        data["seen"] = now_ts(request)
        return _page(request, data, PIN, exc.status, terminal=term, error=text)
    _forget(data)
    response = _page(request, data, "kiosk/start.html", exc.status, terminal=term, error=text)
    # should the refusal be the database's, the idle time ends the session
    with contextlib.suppress(DomainError):
        _sign_out(request, response)
    return response


router = APIRouter(route_class=channel_route(_refused), dependencies=[Depends(_language)])


def terminal(request: Request) -> TerminalView:
    """This machine's terminal, or to the start (which is then the set-up page)."""
    term = _this_terminal(request)
    if term is None:
        raise Redirect("/kiosk/")
    return term


def checked(request: Request, given: Annotated[str, Depends(forms.csrf_given)]) -> None:
    token = _state(request).get("csrf")
    require_csrf(token if isinstance(token, str) else None, given)


Terminal = Annotated[TerminalView, Depends(terminal)]
Checked = Annotated[None, Depends(checked)]
GivenCsrf = Annotated[str, Depends(forms.csrf_given)]
ActivateLink = Annotated[forms.KioskActivateLink, Depends(forms.queried(forms.KioskActivateLink))]
ActivateForm = Annotated[forms.KioskActivate, Depends(forms.posted(forms.KioskActivate))]
CardForm = Annotated[forms.KioskCard, Depends(forms.posted(forms.KioskCard))]
PinForm = Annotated[forms.KioskPin, Depends(forms.posted(forms.KioskPin))]


@router.get("/")
def start(request: Request) -> Response:
    data = _state(request)
    _forget(data)
    term = _this_terminal(request)
    if term is None:
        return _setup(request, data)
    response = _page(request, data, "kiosk/start.html", terminal=term)
    _set_device(request, response, str(request.cookies.get(DEVICE_COOKIE)))
    _sign_out(request, response)  # the start page is for the next card
    return response


@router.get("/activate")
def activate_form(request: Request, link: ActivateLink) -> Response:
    """The set-up form, filled in from a link staff were given (``yibao demo``
    prints one); activating is the form's POST."""
    return _setup(request, _state(request), terminal_code=link.terminal, activation_code=link.code)


@router.post("/activate")
@refusals_on(SETUP)
def activate(request: Request, _: Checked, form: ActivateForm) -> Response:
    __, token = terminals.activate(
        services_of(request).uow(),
        terminal_code=form.terminal,
        activation_code=form.activation_code,
        channel=Channel.KIOSK,
        source=request.client.host if request.client else "",
    )
    data = _state(request)
    _forget(data)
    data["csrf"] = new_csrf()  # a new page, a new token
    response = see_other("/kiosk/")
    ANONYMOUS.save(request, response, data)
    _set_device(request, response, token)
    return response


@router.post("/card")
def card(request: Request, term: Terminal, _: Checked, form: CardForm) -> Response:
    data = _state(request)
    data["card"] = terminals.read_card(
        services_of(request).uow(), terminal_code=term.code, card_no=form.card_no
    )
    data["seen"] = now_ts(request)
    return _page(request, data, PIN, terminal=term)


@router.post("/pin")
@refusals_on(PIN)
def pin(request: Request, term: Terminal, given: GivenCsrf, form: PinForm) -> Response:
    data = _state(request)
    if "card" not in data:
        raise Redirect("/kiosk/")
    token = data.get("csrf")
    require_csrf(token if isinstance(token, str) else None, given)
    done = terminals.sign_in(
        services_of(request).uow(),
        terminal_code=term.code,
        card_no=str(data["card"]),
        pin=form.pin,
        replacing=SESSION.token(request),
    )
    _forget(data)  # the card is the session's now
    response = see_other("/kiosk/home")
    ANONYMOUS.save(request, response, data)
    SESSION.set(request, response, done.opened.token)
    return response


def signed_in(request: Request, term: Terminal) -> KioskSession:
    """The live session of a card whose PIN was right on this terminal, or to the start."""
    token = SESSION.token(request)
    live = (
        terminals.session_of(services_of(request).uow(), token=token, terminal_code=term.code)
        if token is not None
        else None
    )
    if live is None:
        raise Redirect("/kiosk/")
    return live


Session = Annotated[KioskSession, Depends(signed_in)]


def _holder(live: KioskSession) -> Named:
    """The card's holder, as signed in: the card is for their sole use."""
    return Named(person_id=live.person_id)


@router.get("/home")
def home(request: Request, term: Terminal, live: Session) -> Response:
    summary = account_summary(
        services_of(request).uow(),
        actor=terminal_actor(term),
        channel=Channel.KIOSK,
        presenter=Presenter.HOLDER,
        card_no=live.card_no,
        named=_holder(live),
        recent=10,
    )
    return _page(
        request,
        _state(request),
        "kiosk/home.html",
        terminal=term,
        summary=summary,
        cause=records.cause,
    )


@router.get("/receipt.pdf")
def receipt(request: Request, term: Terminal, live: Session) -> Response:
    pdf = records.receipt(
        services_of(request).uow(),
        actor=terminal_actor(term),
        channel=Channel.KIOSK,
        card_no=live.card_no,
        named=_holder(live),
        place=term.location,
    )
    return Response(
        pdf,
        media_type="application/pdf",
        headers={
            "Content-Disposition": 'attachment; filename="receipt.pdf"',
            "Cache-Control": "no-store",
        },
    )


@router.post("/logout")
def logout(request: Request) -> Response:
    # Forgetting the person needs no CSRF check: it only ever takes access away.
    data = _state(request)
    _forget(data)
    _new_session(request, data)
    response = see_other("/kiosk/")
    ANONYMOUS.save(request, response, data)
    _sign_out(request, response)
    return response


@router.api_route("/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def nowhere(request: Request) -> Response:
    raise no_such_page()
