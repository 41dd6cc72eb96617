"""The insured person's web portal under /portal/."""

from __future__ import annotations

import datetime as dt
import io
import secrets
from collections.abc import Callable
from typing import Any

import qrcode
import qrcode.image.svg
from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from yibao.channels.web.common import (
    CSRF_REFUSED,
    WebSession,
    csrf_ok,
    error_text,
    render,
    services_of,
)
from yibao.domain import ledger as codes
from yibao.domain.actors import Channel
from yibao.domain.errors import DomainError, invalid
from yibao.domain.schemes import PSN_TYPE_ZH, STATUS_ZH
from yibao.services.access import person_login as portal_service
from yibao.services.cards import cards as card_service
from yibao.services.cards import evoucher
from yibao.services.cards.cards import current_card
from yibao.services.contributions import contributions
from yibao.services.inquiry import records
from yibao.services.ledger import ledger
from yibao.store.models import Person
from yibao.store.uow import UnitOfWork

router = APIRouter()
SESSION = WebSession("yb_portal", "/portal", 30 * 60)


def _go(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _person(request: Request, work: UnitOfWork) -> Person | None:
    data = SESSION.load(request)
    if "pid" not in data:
        return None
    return portal_service.session_person(
        work, person_id=int(data["pid"]), epoch=int(data.get("epoch", 0))
    )


def _page(request: Request, template: str, status: int = 200, **context: Any) -> Response:
    """Render with the session's CSRF token, creating an anonymous session if needed."""
    data = SESSION.load(request)
    if "csrf" in data:
        return render(request, template, status, csrf=data["csrf"], **context)
    data = {"csrf": secrets.token_urlsafe(24)}
    response = render(request, template, status, csrf=data["csrf"], **context)
    SESSION.save(request, response, data)
    return response


def _view(work: UnitOfWork, person: Person, action: str, subject: str = "") -> None:
    """Audit the person's own look at their data."""
    work.audit(
        portal_service.person_actor(person).record(
            channel=Channel.PORTAL,
            action=action,
            person_id=person.id,
            subject=subject or person.account_no,
        )
    )


# ---------------------------------------------------------------- log in and out


@router.get("/login")
def login_form(request: Request) -> Response:
    return _page(request, "portal/login.html")


@router.post("/login")
def login(
    request: Request,
    login_id: str = Form(""),
    password: str = Form(""),
    csrf: str = Form(""),
) -> Response:
    data = SESSION.load(request)
    if not csrf_ok(data, csrf):
        return _page(request, "portal/login.html", 403, error=error_text(request, CSRF_REFUSED))
    svc = services_of(request)
    try:
        with svc.uow() as work:
            person, epoch = portal_service.login(
                work, login_id=login_id, password=password, channel=Channel.PORTAL
            )
            pid = person.id
            work.commit()
    except DomainError as exc:
        return _page(
            request,
            "portal/login.html",
            exc.status,
            error=error_text(request, exc),
            login_id=login_id,
        )
    response = _go("/portal/")
    SESSION.save(request, response, {"pid": pid, "epoch": epoch})  # a new CSRF token too
    return response


@router.post("/logout")
def logout(request: Request, csrf: str = Form("")) -> Response:
    response = _go("/portal/login")
    if csrf_ok(SESSION.load(request), csrf):
        SESSION.clear(response)
    return response


@router.get("/activate")
def activate_form(request: Request) -> Response:
    return _page(request, "portal/activate.html")


@router.post("/activate")
def activate(
    request: Request,
    login_id: str = Form(""),
    code: str = Form(""),
    password: str = Form(""),
    password2: str = Form(""),
    csrf: str = Form(""),
) -> Response:
    if not csrf_ok(SESSION.load(request), csrf):
        return _page(request, "portal/activate.html", 403, error=error_text(request, CSRF_REFUSED))
    try:
        if password != password2:
            raise invalid(
                "password2", "两次输入的密码不一致", "the two passwords differ", "mismatch"
            )
        with services_of(request).uow() as work:
            portal_service.activate(
                work, login_id=login_id, code=code, password=password, channel=Channel.PORTAL
            )
            work.commit()
    except DomainError as exc:
        return _page(
            request,
            "portal/activate.html",
            exc.status,
            error=error_text(request, exc),
            login_id=login_id,
        )
    return _page(request, "portal/login.html", activated=True, login_id=login_id)


# ---------------------------------------------------------------- pages


@router.get("/")
def home(request: Request) -> Response:
    svc = services_of(request)
    with svc.uow() as work:
        person = _person(request, work)
        if person is None:
            return _go("/portal/login")
        balance = ledger.individual_balance(work.session, person.id)
        card = current_card(work, person)
        lines = ledger.history(work.session, code=codes.individual(person.id), limit=5000)
        chart = portal_service.month_end_balances(
            [(line.at, line.balance_after) for line in lines], today=work.clock.today()
        )
        _view(work, person, "portal.balance")
        now = work.clock.now()
        work.commit()
        top = max([1, *(v for _, v in chart)])
        return _page(
            request,
            "portal/home.html",
            person=person,
            balance=balance,
            as_of=now,
            card=card,
            chart=chart,
            chart_top=top,
            recent=lines[:5],
            cause=records.cause,
        )


def _period(start: str, end: str, today: dt.date) -> tuple[dt.date, dt.date]:
    try:
        lo = (
            dt.date.fromisoformat(start) if start else today.replace(day=1) - dt.timedelta(days=365)
        )
        hi = dt.date.fromisoformat(end) if end else today
    except ValueError:
        raise invalid("start", "日期格式错误", "dates are YYYY-MM-DD", "format") from None
    if lo > hi:
        raise invalid("start", "开始日期晚于结束日期", "the start is after the end", "order")
    return lo, hi


@router.get("/postings")
def postings(request: Request, start: str = "", end: str = "") -> Response:
    svc = services_of(request)
    with svc.uow() as work:
        person = _person(request, work)
        if person is None:
            return _go("/portal/login")
        error = None
        try:
            lo, hi = _period(start, end, work.clock.today())
        except DomainError as exc:
            error = error_text(request, exc)
            lo, hi = _period("", "", work.clock.today())
        bounds = records._bounds(lo, hi)
        lines = ledger.history(
            work.session,
            code=codes.individual(person.id),
            start=bounds[0],
            end=bounds[1],
            limit=1000,
        )
        _view(work, person, "portal.postings")
        work.commit()
        template = (
            "portal/_postings.html" if request.headers.get("hx-request") else "portal/postings.html"
        )
        return _page(
            request,
            template,
            person=person,
            lines=lines,
            start=lo,
            end=hi,
            cause=records.cause,
            error=error,
        )


@router.get("/payments")
def payments(request: Request) -> Response:
    svc = services_of(request)
    with svc.uow() as work:
        person = _person(request, work)
        if person is None:
            return _go("/portal/login")
        rows = contributions.payment_records(work.session, person.id)
        _view(work, person, "portal.payments")
        work.commit()
        return _page(
            request,
            "portal/payments.html",
            person=person,
            rows=rows,
            month_text=contributions.month_text,
        )


@router.get("/rights")
def rights(request: Request) -> Response:
    svc = services_of(request)
    with svc.uow() as work:
        person = _person(request, work)
        if person is None:
            return _go("/portal/login")
        rec = records.rights_records(work.session, person.id)
        _view(work, person, "portal.rights")
        work.commit()
        return _page(
            request,
            "portal/rights.html",
            person=person,
            rec=rec,
            schemes=contributions.SCHEMES,
            psn_types=PSN_TYPE_ZH,
            statuses=STATUS_ZH,
            cause=records.cause,
        )


@router.get("/statement")
def statement_form(request: Request) -> Response:
    svc = services_of(request)
    with svc.uow() as work:
        person = _person(request, work)
        if person is None:
            return _go("/portal/login")
        lo, hi = _period("", "", work.clock.today())
        return _page(request, "portal/statement.html", person=person, start=lo, end=hi)


@router.get("/statement.pdf")
def statement_pdf(request: Request, start: str = "", end: str = "") -> Response:
    svc = services_of(request)
    with svc.uow() as work:
        person = _person(request, work)
        if person is None:
            return _go("/portal/login")
        try:
            lo, hi = _period(start, end, work.clock.today())
        except DomainError as exc:
            return _page(
                request,
                "portal/statement.html",
                exc.status,
                person=person,
                start=start,
                end=end,
                error=error_text(request, exc),
            )
        pdf = records.statement_pdf(work.session, person, start=lo, end=hi, now=work.clock.now())
        _view(work, person, "portal.statement", f"{lo}..{hi}")
        work.commit()
    return Response(
        pdf,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="statement-{lo:%Y%m%d}-{hi:%Y%m%d}.pdf"',
            "Cache-Control": "no-store",
        },
    )


@router.get("/password")
def password_form(request: Request) -> Response:
    with services_of(request).uow() as work:
        person = _person(request, work)
        if person is None:
            return _go("/portal/login")
        return _page(request, "portal/password.html", person=person)


def _password_page_form(
    request: Request,
    csrf: str,
    error_key: str,
    act: Callable[[UnitOfWork, Person], dict[str, Any]],
) -> Response:
    """A form of the password page: the session's person and its CSRF token,
    then ``act``; the page again with what ``act`` returns, or with the
    refusal under ``error_key``."""
    data = SESSION.load(request)
    with services_of(request).uow() as work:
        person = _person(request, work)
        if person is None:
            return _go("/portal/login")
        if not csrf_ok(data, csrf):
            refusal: DomainError = CSRF_REFUSED
            status = 403
        else:
            try:
                shown = act(work, person)
                work.commit()
                return _page(request, "portal/password.html", person=person, **shown)
            except DomainError as exc:
                refusal, status = exc, exc.status
        return _page(
            request,
            "portal/password.html",
            status,
            person=person,
            **{error_key: error_text(request, refusal)},
        )


def _same(first: str, second: str, field: str, en: str) -> None:
    """A new secret is typed twice."""
    if first != second:
        raise invalid(field, "两次输入的密码不一致", en, "mismatch")


@router.post("/password")
def change_password(
    request: Request,
    old_password: str = Form(""),
    new_password: str = Form(""),
    new_password2: str = Form(""),
    csrf: str = Form(""),
) -> Response:
    epoch = 0

    def act(work: UnitOfWork, person: Person) -> dict[str, Any]:
        nonlocal epoch
        _same(new_password, new_password2, "new_password2", "the two passwords differ")
        epoch = portal_service.change_password(
            work, person=person, channel=Channel.PORTAL, old=old_password, new=new_password
        )
        return {"changed": True}

    response = _password_page_form(request, csrf, "error", act)
    if epoch:  # other sessions end; this one goes on under the new epoch
        data = SESSION.load(request)
        SESSION.save(request, response, {"pid": data["pid"], "epoch": epoch, "csrf": data["csrf"]})
    return response


@router.post("/phone-pin")
def set_phone_pin(
    request: Request,
    phone_password: str = Form(""),
    phone_pin: str = Form(""),
    phone_pin2: str = Form(""),
    csrf: str = Form(""),
) -> Response:
    """Set the 6-digit PIN the telephone line asks for."""

    def act(work: UnitOfWork, person: Person) -> dict[str, Any]:
        _same(phone_pin, phone_pin2, "phone_pin2", "the two PINs differ")
        portal_service.set_phone_pin(
            work, person=person, channel=Channel.PORTAL, password=phone_password, pin=phone_pin
        )
        return {"pin_set": True}

    return _password_page_form(request, csrf, "pin_error", act)


@router.post("/lost")
def report_lost(request: Request, card_no: str = Form(""), csrf: str = Form("")) -> Response:
    """The person reports their own card lost; it is blocked at once."""
    data = SESSION.load(request)
    with services_of(request).uow() as work:
        person = _person(request, work)
        if person is None:
            return _go("/portal/login")
        if not csrf_ok(data, csrf):
            return _page(
                request,
                "portal/message.html",
                403,
                person=person,
                error=error_text(request, CSRF_REFUSED),
            )
        try:
            # TODO(merge): branch web calls the use case with a fresh unit of work
            card_service.report_lost.step(
                work,
                actor=portal_service.person_actor(person),
                channel=Channel.PORTAL,
                person_id=person.id,
                card_no=card_no,
                reason="reported lost on the portal",
            )
            work.commit()
        except DomainError as exc:
            return _page(
                request,
                "portal/message.html",
                exc.status,
                person=person,
                error=error_text(request, exc),
            )
    return _go("/portal/")


@router.get("/voucher")
def voucher(request: Request) -> Response:
    with services_of(request).uow() as work:
        person = _person(request, work)
        if person is None:
            return _go("/portal/login")
        return _page(request, "portal/voucher.html", person=person)


def qr_svg(text: str) -> str:
    image = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage, box_size=10)
    buf = io.BytesIO()
    image.save(buf)
    svg = buf.getvalue().decode()
    return svg[svg.index("<svg") :]


@router.post("/voucher/code")
def voucher_code(request: Request, csrf: str = Form("")) -> Response:
    data = SESSION.load(request)
    with services_of(request).uow() as work:
        person = _person(request, work)
        if person is None:
            return Response(status_code=401, headers={"HX-Redirect": "/portal/login"})
        if not csrf_ok(data, csrf):
            return Response(status_code=403)
        token, expires = evoucher.issue(work, person_id=person.id, channel=Channel.PORTAL)
        _view(work, person, "portal.voucher")
        work.commit()
        return _page(
            request, "portal/_voucher.html", person=person, svg=qr_svg(token), expires=expires
        )
