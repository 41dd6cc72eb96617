"""The self-service terminal under /kiosk/: card reader, PIN keypad, balance,
last transactions and a receipt; it forgets the person after an idle minute.

A browser is a terminal only once it has activated itself with a one-time code
from staff: it then holds a device cookie, and each request finds its
terminal by that cookie's token alone."""

from __future__ import annotations

import secrets
import time
from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from yibao.channels.web.common import (
    CSRF_REFUSED,
    WebSession,
    csrf_ok,
    error_text,
    render,
    services_of,
    set_strict_cookie,
)
from yibao.domain import ledger as codes
from yibao.domain.actors import Channel
from yibao.domain.errors import DomainError
from yibao.services.access import terminals as kiosk_service
from yibao.services.cards.cards import current_card
from yibao.services.documents import Document, yuan
from yibao.services.inquiry import records
from yibao.services.ledger import ledger
from yibao.store.models import KioskTerminal, Person
from yibao.store.uow import UnitOfWork

router = APIRouter()
SESSION = WebSession("yb_kiosk", "/kiosk", 24 * 3600)
PERSON_KEYS = ("pid", "card", "seen")
DEVICE_COOKIE = "yb_kiosk_device"
# Browsers keep a cookie at most 400 days; each visit to the start page renews it.
DEVICE_MAX_AGE = 400 * 86400

NOT_ACTIVATED = DomainError(
    code="kiosk.device_revoked",
    zh="本机的终端凭证已失效，请工作人员签发新激活码后重新激活",
    en="this machine's terminal credential is no longer valid; activate it with a new code",
    status=401,
)


def _go(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _idle(request: Request) -> int:
    return services_of(request).settings.kiosk_idle_seconds


def _state(request: Request) -> dict[str, Any]:
    """The terminal's session; the person in it is forgotten once idle too long."""
    data = SESSION.load(request)
    data.pop("term", None)  # where sessions named their terminal: no longer believed
    if "seen" in data and time.time() - float(data["seen"]) > _idle(request):
        for key in PERSON_KEYS:
            data.pop(key, None)
    return data


def _page(
    request: Request, data: dict[str, Any], template: str, status: int = 200, **context: Any
) -> Response:
    data.setdefault("csrf", secrets.token_urlsafe(24))
    response = render(
        request,
        template,
        status,
        csrf=data["csrf"],
        idle_seconds=_idle(request),
        body_class="kiosk",
        **context,
    )
    SESSION.save(request, response, data)
    return response


def _set_device(request: Request, response: Response, token: str) -> None:
    set_strict_cookie(request, response, DEVICE_COOKIE, token, DEVICE_MAX_AGE, "/kiosk")


def _terminal(request: Request, work: UnitOfWork) -> KioskTerminal | None:
    """The terminal this machine activated itself as; nothing the request names."""
    return kiosk_service.terminal_of_device(work, request.cookies.get(DEVICE_COOKIE))


def _setup(
    request: Request,
    work: UnitOfWork,
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
    term = _terminal(request, work)
    revoked = term is None and bool(request.cookies.get(DEVICE_COOKIE))
    if error is None and revoked:
        error = NOT_ACTIVATED
    for key in PERSON_KEYS:
        data.pop(key, None)
    response = _page(
        request,
        data,
        "kiosk/setup.html",
        status,
        terminal=term,
        terminal_code=terminal_code,
        activation_code=activation_code,
        error=error_text(request, error) if error else None,
        field=error.field if error else None,
    )
    if revoked:
        response.delete_cookie(DEVICE_COOKIE, path="/kiosk")
    return response


@router.get("/")
def start(request: Request) -> Response:
    data = _state(request)
    for key in PERSON_KEYS:
        data.pop(key, None)
    with services_of(request).uow() as work:
        term = _terminal(request, work)
        if term is None:
            return _setup(request, work, data)
        response = _page(request, data, "kiosk/start.html", terminal=term)
        _set_device(request, response, str(request.cookies.get(DEVICE_COOKIE)))
        return response


@router.get("/activate")
def activate_form(request: Request, terminal: str = "", code: str = "") -> Response:
    """The set-up form, filled in from a link staff were given (``yibao demo``
    prints one); activating is the form's POST."""
    with services_of(request).uow() as work:
        return _setup(request, work, _state(request), terminal_code=terminal, activation_code=code)


@router.post("/activate")
def activate(
    request: Request,
    terminal: str = Form(""),
    activation_code: str = Form(""),
    csrf: str = Form(""),
) -> Response:
    data = _state(request)
    with services_of(request).uow() as work:
        if not csrf_ok(data, csrf):
            return _setup(request, work, data, 403, terminal_code=terminal, error=CSRF_REFUSED)
        try:
            _, token = kiosk_service.activate(
                work,
                terminal_code=terminal,
                activation_code=activation_code,
                channel=Channel.KIOSK,
                source=request.client.host if request.client else "",
            )
            work.commit()
        except DomainError as exc:
            work.rollback()
            return _setup(request, work, data, exc.status, terminal_code=terminal, error=exc)
    for key in PERSON_KEYS:
        data.pop(key, None)
    data["csrf"] = secrets.token_urlsafe(24)  # a new page, a new token
    response = _go("/kiosk/")
    SESSION.save(request, response, data)
    _set_device(request, response, token)
    return response


@router.post("/card")
def card(request: Request, card_no: str = Form(""), csrf: str = Form("")) -> Response:
    data = _state(request)
    with services_of(request).uow() as work:
        term = _terminal(request, work)
        if term is None:
            return _go("/kiosk/")
        if not csrf_ok(data, csrf):
            return _page(
                request,
                data,
                "kiosk/start.html",
                403,
                terminal=term,
                error=error_text(request, CSRF_REFUSED),
            )
        try:
            found = kiosk_service.read_card(work, terminal=term, card_no=card_no)
        except DomainError as exc:
            return _page(
                request,
                data,
                "kiosk/start.html",
                exc.status,
                terminal=term,
                error=error_text(request, exc),
            )
        data["card"] = found.card_no
        data["seen"] = time.time()
        return _page(request, data, "kiosk/pin.html", terminal=term)


@router.post("/pin")
def pin(request: Request, pin: str = Form(""), csrf: str = Form("")) -> Response:
    data = _state(request)
    with services_of(request).uow() as work:
        term = _terminal(request, work)
        if term is None or "card" not in data:
            return _go("/kiosk/")
        if not csrf_ok(data, csrf):
            return _page(
                request,
                data,
                "kiosk/pin.html",
                403,
                terminal=term,
                error=error_text(request, CSRF_REFUSED),
            )
        try:
            person = kiosk_service.sign_in(work, terminal=term, card_no=str(data["card"]), pin=pin)
            work.commit()
        except DomainError as exc:
            if exc.code == "kiosk.blocked":
                data.pop("card", None)
                return _page(
                    request,
                    data,
                    "kiosk/start.html",
                    exc.status,
                    terminal=term,
                    error=error_text(request, exc),
                )
            data["seen"] = time.time()
            return _page(
                request,
                data,
                "kiosk/pin.html",
                exc.status,
                terminal=term,
                error=error_text(request, exc),
            )
        data["pid"] = person.id
        data["seen"] = time.time()
        response = _go("/kiosk/home")
        SESSION.save(request, response, data)
        return response


def _signed_in(
    request: Request, work: UnitOfWork, data: dict[str, Any]
) -> tuple[KioskTerminal, Person] | None:
    term = _terminal(request, work)
    if term is None or "pid" not in data:
        return None
    person = work.session.get(Person, int(data["pid"]))
    return (term, person) if person is not None else None


@router.get("/home")
def home(request: Request) -> Response:
    data = _state(request)
    with services_of(request).uow() as work:
        who = _signed_in(request, work, data)
        if who is None:
            return _go("/kiosk/")
        term, person = who
        balance = ledger.individual_balance(work.session, person.id)
        lines = ledger.history(work.session, code=codes.individual(person.id), limit=10)
        the_card = current_card(work, person)
        kiosk_service.inquire(work, terminal=term, person=person, action="kiosk.balance")
        now = work.clock.now()
        work.commit()
        data["seen"] = time.time()
        return _page(
            request,
            data,
            "kiosk/home.html",
            terminal=term,
            person=person,
            balance=balance,
            lines=lines,
            card=the_card,
            as_of=now,
            cause=records.cause,
        )


@router.get("/receipt.pdf")
def receipt(request: Request) -> Response:
    data = _state(request)
    with services_of(request).uow() as work:
        who = _signed_in(request, work, data)
        if who is None:
            return _go("/kiosk/")
        term, person = who
        balance = ledger.individual_balance(work.session, person.id)
        lines = ledger.history(work.session, code=codes.individual(person.id), limit=10)
        the_card = current_card(work, person)
        now = work.clock.now()
        doc = Document("医保个人账户查询回单", "Account inquiry receipt", subtitle=term.location)
        doc.fields(
            [
                ("姓名 Name", person.name),
                ("卡号 Card", the_card.card_no if the_card else ""),
                ("余额 Balance", f"{yuan(balance)} 元"),
                ("终端 Terminal", term.code),
            ]
        )
        doc.table(
            ["日期 Date", "摘要 Cause", "金额 Amount", "余额 Balance"],
            [
                [
                    line.at.strftime("%Y-%m-%d"),
                    " / ".join(records.cause(line.kind)),
                    yuan(line.amount),
                    yuan(line.balance_after),
                ]
                for line in lines
            ],
            [30, 80, 30, 30],
        )
        pdf = doc.render(generated_at=now)
        kiosk_service.inquire(work, terminal=term, person=person, action="kiosk.receipt")
        work.commit()
    data["seen"] = time.time()
    response = Response(
        pdf,
        media_type="application/pdf",
        headers={
            "Content-Disposition": 'attachment; filename="receipt.pdf"',
            "Cache-Control": "no-store",
        },
    )
    SESSION.save(request, response, data)
    return response


@router.post("/logout")
def logout(request: Request) -> Response:
    # Forgetting the person needs no CSRF check: it only ever takes access away.
    data = _state(request)
    for key in PERSON_KEYS:
        data.pop(key, None)
    response = _go("/kiosk/")
    SESSION.save(request, response, data)
    return response
