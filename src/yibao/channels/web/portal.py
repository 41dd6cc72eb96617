"""The insured person's web portal under /portal/.

Each route parses its form, calls one use case and renders the page; the
signed-in person is a dependency (``Me``), a form's CSRF token another
(``Checked``), and a refusal (``DomainError``) is shown by ``_refused`` on the
page the route declares with ``refusals_on`` (else the message page)."""

from __future__ import annotations

import datetime as dt
import io
import secrets
from typing import Annotated, Any

import qrcode
import qrcode.image.svg
from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from yibao.channels.web.common import (
    ErrorPage,
    Redirect,
    WebSession,
    channel_route,
    csrf_ok,
    error_text,
    refusals_on,
    render,
    require_csrf,
    services_of,
)
from yibao.domain.actors import Channel
from yibao.domain.errors import DomainError, invalid
from yibao.domain.schemes import PSN_TYPE_ZH, STATUS_ZH
from yibao.domain.use import Presenter
from yibao.services.access import person_login
from yibao.services.access.person_login import PersonView, person_actor
from yibao.services.cards import cards as card_service
from yibao.services.cards import evoucher
from yibao.services.contributions import contributions
from yibao.services.inquiry import records
from yibao.services.inquiry.summary import account_summary

SESSION = WebSession("yb_portal", "/portal", 30 * 60)


def _page(request: Request, template: str, status: int = 200, **context: Any) -> Response:
    """Render with the session's CSRF token, creating an anonymous session if needed."""
    data = SESSION.load(request)
    if "csrf" in data:
        return render(request, template, status, csrf=data["csrf"], **context)
    data = {"csrf": secrets.token_urlsafe(24)}
    response = render(request, template, status, csrf=data["csrf"], **context)
    SESSION.save(request, response, data)
    return response


def _refused(
    request: Request, exc: DomainError, page: ErrorPage | None, form: dict[str, str]
) -> Response:
    """The portal's one error handler: the refusal on the route's page (an
    HTMX request gets the fragment it swaps in), with the signed-in person's
    menu and the form's harmless fields filled in again."""
    text = error_text(request, exc)
    if page is None or not page.shows(exc):
        page = ErrorPage("portal/message.html", fragment="portal/_error.html")
    kept = {name: form.get(name, "") for name in page.keep}
    if request.headers.get("hx-request"):
        fragment = page.fragment or "portal/_error.html"
        return _page(request, fragment, exc.status, error=text, **kept)
    me = getattr(request.state, "person", None)
    return _page(request, page.template, exc.status, person=me, **kept, **{page.key: text})


router = APIRouter(route_class=channel_route(_refused))


def signed_in(request: Request) -> PersonView:
    """The person of this portal session, or to the log-in page."""
    data = SESSION.load(request)
    if "pid" not in data:
        raise Redirect("/portal/login")
    me = person_login.session_person(
        services_of(request).uow(), person_id=int(data["pid"]), epoch=int(data.get("epoch", 0))
    )
    if me is None:
        raise Redirect("/portal/login")
    request.state.person = me  # for the error handler's menu
    return me


def checked(request: Request, csrf: str = Form("")) -> None:
    """A form of this portal's own pages: its session's CSRF token."""
    require_csrf(SESSION.load(request), csrf)


Me = Annotated[PersonView, Depends(signed_in)]
Checked = Annotated[None, Depends(checked)]


def _go(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _day(value: str, field: str) -> dt.date | None:
    """A date from a form field (YYYY-MM-DD), or None when left empty."""
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise invalid(field, "日期格式错误", "dates are YYYY-MM-DD", "format") from None


# ---------------------------------------------------------------- log in and out


@router.get("/login")
def login_form(request: Request) -> Response:
    return _page(request, "portal/login.html")


@router.post("/login")
@refusals_on("portal/login.html", keep=("login_id",))
def login(
    request: Request,
    _: Checked,
    login_id: str = Form(""),
    password: str = Form(""),
) -> Response:
    done = person_login.login(
        services_of(request).uow(), login_id=login_id, password=password, channel=Channel.PORTAL
    )
    response = _go("/portal/")
    # a new session, with a new CSRF token
    SESSION.save(request, response, {"pid": done.person.id, "epoch": done.epoch})
    return response


@router.post("/logout")
def logout(request: Request, csrf: str = Form("")) -> Response:
    response = _go("/portal/login")
    if csrf_ok(SESSION.load(request), csrf):  # a forged log-out does nothing
        SESSION.clear(response)
    return response


@router.get("/activate")
def activate_form(request: Request) -> Response:
    return _page(request, "portal/activate.html")


@router.post("/activate")
@refusals_on("portal/activate.html", keep=("login_id",))
def activate(
    request: Request,
    _: Checked,
    login_id: str = Form(""),
    code: str = Form(""),
    password: str = Form(""),
    password2: str = Form(""),
) -> Response:
    person_login.activate(
        services_of(request).uow(),
        login_id=login_id,
        code=code,
        password=password,
        password2=password2,
        channel=Channel.PORTAL,
    )
    return _page(request, "portal/login.html", activated=True, login_id=login_id)


# ---------------------------------------------------------------- pages


@router.get("/")
def home(request: Request, me: Me) -> Response:
    summary = account_summary(
        services_of(request).uow(),
        actor=person_actor(me),
        channel=Channel.PORTAL,
        presenter=Presenter.HOLDER,
        person_id=me.id,
        recent=5,
        months=12,
    )
    return _page(
        request,
        "portal/home.html",
        person=me,
        summary=summary,
        chart_top=max([1, *(v for _, v in summary.month_ends)]),
        cause=records.cause,
    )


@router.get("/postings")
@refusals_on(
    "portal/postings.html",
    keep=("start", "end"),
    fragment="portal/_postings.html",
    input_only=True,
)
def postings(request: Request, me: Me, start: str = "", end: str = "") -> Response:
    found = records.postings(
        services_of(request).uow(),
        actor=person_actor(me),
        channel=Channel.PORTAL,
        person_id=me.id,
        start=_day(start, "start"),
        end=_day(end, "end"),
    )
    partial = bool(request.headers.get("hx-request"))
    return _page(
        request,
        "portal/_postings.html" if partial else "portal/postings.html",
        person=me,
        lines=found.lines,
        start=found.start,
        end=found.end,
        cause=records.cause,
    )


@router.get("/payments")
def payments(request: Request, me: Me) -> Response:
    rows = records.payments(
        services_of(request).uow(), actor=person_actor(me), channel=Channel.PORTAL, person_id=me.id
    )
    return _page(
        request,
        "portal/payments.html",
        person=me,
        rows=rows,
        month_text=contributions.month_text,
    )


@router.get("/rights")
def rights(request: Request, me: Me) -> Response:
    rec = records.rights(
        services_of(request).uow(), actor=person_actor(me), channel=Channel.PORTAL, person_id=me.id
    )
    return _page(
        request,
        "portal/rights.html",
        person=me,
        rec=rec,
        schemes=contributions.SCHEMES,
        psn_types=PSN_TYPE_ZH,
        statuses=STATUS_ZH,
        cause=records.cause,
    )


@router.get("/statement")
def statement_form(request: Request, me: Me) -> Response:
    lo, hi = records.default_period(services_of(request).clock.today())
    return _page(request, "portal/statement.html", person=me, start=lo, end=hi)


@router.get("/statement.pdf")
@refusals_on("portal/statement.html", keep=("start", "end"), input_only=True)
def statement_pdf(request: Request, me: Me, start: str = "", end: str = "") -> Response:
    lo, hi, pdf = records.statement(
        services_of(request).uow(),
        actor=person_actor(me),
        channel=Channel.PORTAL,
        person_id=me.id,
        start=_day(start, "start"),
        end=_day(end, "end"),
    )
    return Response(
        pdf,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="statement-{lo:%Y%m%d}-{hi:%Y%m%d}.pdf"',
            "Cache-Control": "no-store",
        },
    )


@router.get("/password")
def password_form(request: Request, me: Me) -> Response:
    return _page(request, "portal/password.html", person=me)


@router.post("/password")
@refusals_on("portal/password.html")
def change_password(
    request: Request,
    me: Me,
    _: Checked,
    old_password: str = Form(""),
    new_password: str = Form(""),
    new_password2: str = Form(""),
) -> Response:
    epoch = person_login.change_password(
        services_of(request).uow(),
        person_id=me.id,
        channel=Channel.PORTAL,
        old=old_password,
        new=new_password,
        new2=new_password2,
    )
    response = _page(request, "portal/password.html", person=me, changed=True)
    # other sessions end; this one goes on under the new epoch, same CSRF token
    data = SESSION.load(request)
    SESSION.save(request, response, {"pid": me.id, "epoch": epoch, "csrf": data["csrf"]})
    return response


@router.post("/phone-pin")
@refusals_on("portal/password.html", key="pin_error")
def set_phone_pin(
    request: Request,
    me: Me,
    _: Checked,
    phone_password: str = Form(""),
    phone_pin: str = Form(""),
    phone_pin2: str = Form(""),
) -> Response:
    """Set the 6-digit PIN the telephone line asks for."""
    person_login.set_phone_pin(
        services_of(request).uow(),
        person_id=me.id,
        channel=Channel.PORTAL,
        password=phone_password,
        pin=phone_pin,
        pin2=phone_pin2,
    )
    return _page(request, "portal/password.html", person=me, pin_set=True)


@router.post("/lost")
def report_lost(request: Request, me: Me, _: Checked, card_no: str = Form("")) -> Response:
    """The person reports their own card lost; it is blocked at once."""
    card_service.report_lost(
        services_of(request).uow(),
        actor=person_actor(me),
        channel=Channel.PORTAL,
        person_id=me.id,
        card_no=card_no,
        reason="reported lost on the portal",
    )
    return _go("/portal/")


@router.get("/voucher")
def voucher(request: Request, me: Me) -> Response:
    return _page(request, "portal/voucher.html", person=me)


def qr_svg(text: str) -> str:
    image = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage, box_size=10)
    buf = io.BytesIO()
    image.save(buf)
    svg = buf.getvalue().decode()
    return svg[svg.index("<svg") :]


@router.post("/voucher/code")
def voucher_code(request: Request, me: Me, _: Checked) -> Response:
    token, expires = evoucher.issue(
        services_of(request).uow(), actor=person_actor(me), channel=Channel.PORTAL, person_id=me.id
    )
    return _page(request, "portal/_voucher.html", person=me, svg=qr_svg(token), expires=expires)
