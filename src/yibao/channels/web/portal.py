"""The insured person's web portal under /portal/.

Each route parses its form (``forms``), calls one use case and renders the
page; the signed-in person is a dependency (``Me``), a form's CSRF token
another (``Checked``), and a refusal (``DomainError``) is shown by
``_refused`` on the page the route declares with ``refusals_on`` (else the
message page).

A signed-in session is kept on the server (``person_login.session_of``):
the ``yb_portal_session`` cookie carries only its id, so that log-out and a
password change end it, copies of the cookie included. Before log-in, the
signed ``yb_portal`` cookie holds the log-in form's CSRF token, and nothing
that opens anything."""

from __future__ import annotations

import io
import secrets
from collections.abc import Callable
from typing import Annotated, Any

import qrcode
import qrcode.image.svg
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from yibao.channels.web import forms
from yibao.channels.web.common import (
    ErrorPage,
    SessionCookie,
    SessionPages,
    SignedCookie,
    channel_route,
    error_text,
    no_such_page,
    refusals_on,
    services_of,
)
from yibao.domain.actors import Channel
from yibao.domain.errors import DomainError
from yibao.services.access import person_login, self_service
from yibao.services.access.person_login import PersonView, PortalSession, person_actor
from yibao.services.cards import cards as card_service
from yibao.services.cards import evoucher
from yibao.services.family import family as family_aid
from yibao.services.inquiry import records
from yibao.services.settlement import offsite

SESSION = SessionCookie("yb_portal_session", "/portal")
# the pages before log-in: their CSRF token, for two hours
ANONYMOUS = SignedCookie("yb_portal", "/portal", 2 * 3600)
PAGES = SessionPages(
    cookie=SESSION,
    anonymous=ANONYMOUS,
    session_of=person_login.session_of,
    party=lambda live: live.person,
    login="/portal/login",
    message=ErrorPage("portal/message.html", fragment="portal/_error.html"),
)


def _refused(
    request: Request, exc: DomainError, page: ErrorPage | None, form: dict[str, str]
) -> Response:
    """The portal's one error handler: the refusal on the route's page (an
    HTMX request gets the fragment it swaps in), with the signed-in person's
    menu and the form's harmless fields filled in again."""
    text = error_text(request, exc)
    page = PAGES.shown(page, exc)
    kept = page.kept(form)
    if request.headers.get("hx-request"):
        fragment = page.fragment or "portal/_error.html"
        return PAGES.page(request, fragment, exc.status, error=text, **kept)
    me = PAGES.who(request)
    return PAGES.page(request, page.template, exc.status, person=me, **kept, **{page.key: text})


router = APIRouter(route_class=channel_route(_refused))


Me = Annotated[PersonView, Depends(PAGES.signed_in)]
Checked = Annotated[None, Depends(PAGES.checked)]
LoginForm = Annotated[forms.PortalLogin, Depends(forms.posted(forms.PortalLogin))]
ActivateForm = Annotated[forms.PortalActivate, Depends(forms.posted(forms.PortalActivate))]
PeriodQuery = Annotated[forms.Period, Depends(forms.queried(forms.Period))]
PasswordForm = Annotated[forms.PasswordChange, Depends(forms.posted(forms.PasswordChange))]
PhonePinForm = Annotated[forms.PhonePin, Depends(forms.posted(forms.PhonePin))]
CardForm = Annotated[forms.OwnCard, Depends(forms.posted(forms.OwnCard))]
FoundForm = Annotated[forms.OwnCardFound, Depends(forms.posted(forms.OwnCardFound))]
ResetForm = Annotated[forms.PasswordReset, Depends(forms.posted(forms.PasswordReset))]
GivenCsrf = Annotated[str, Depends(forms.csrf_given)]


# ---------------------------------------------------------------- log in and out


@router.get("/login")
def login_form(request: Request) -> Response:
    return PAGES.page(request, "portal/login.html")


@router.post("/login")
@refusals_on("portal/login.html", keep=("login_id",))
def login(request: Request, _: Checked, form: LoginForm) -> Response:
    done = person_login.login(
        services_of(request).uow(),
        login_id=form.login_id,
        password=form.password,
        channel=Channel.PORTAL,
        replacing=SESSION.token(request),
    )
    return PAGES.opened(request, done.opened.token, "/portal/")


@router.post("/logout")
def logout(request: Request, given: GivenCsrf) -> Response:
    return PAGES.log_out(
        request,
        given,
        lambda token: person_login.log_out(
            services_of(request).uow(), token=token, channel=Channel.PORTAL
        ),
    )


@router.get("/activate")
def activate_form(request: Request) -> Response:
    return PAGES.page(request, "portal/activate.html")


@router.post("/activate")
@refusals_on("portal/activate.html", keep=("login_id",))
def activate(request: Request, _: Checked, form: ActivateForm) -> Response:
    person_login.activate(
        services_of(request).uow(),
        login_id=form.login_id,
        code=form.code,
        password=form.password,
        password2=form.password2,
        channel=Channel.PORTAL,
    )
    return PAGES.page(request, "portal/login.html", activated=True, login_id=form.login_id)


@router.get("/reset")
def reset_form(request: Request) -> Response:
    """A forgotten password: the activation code from the counter, or the
    ID number and the telephone PIN."""
    return PAGES.page(request, "portal/reset.html")


@router.post("/reset")
@refusals_on("portal/reset.html", keep=("certno",))
def reset(request: Request, _: Checked, form: ResetForm) -> Response:
    person_login.reset_with_phone_pin(
        services_of(request).uow(),
        certno=form.certno,
        pin=form.phone_pin,
        password=form.password,
        password2=form.password2,
        channel=Channel.PORTAL,
    )
    return PAGES.page(request, "portal/login.html", activated=True, login_id=form.certno)


# ---------------------------------------------------------------- pages


def _home(request: Request, me: PersonView, status: int = 200, **extra: Any) -> Response:
    """The first page: the balance, the card and the benefits, the card
    applications under way, the chart and the last postings; ``extra`` is
    what a form just did (a loss report confirmed) or why it was refused."""
    home = records.portal_home(
        services_of(request).uow(),
        actor=person_actor(me),
        channel=Channel.PORTAL,
        person_id=me.id,
        recent=5,
        months=12,
    )
    summary, progress = home.summary, home.progress
    top = max([1, *(v for _, v in summary.month_ends)])
    return PAGES.page(
        request,
        "portal/home.html",
        status,
        person=me,
        summary=summary,
        progress=progress,
        chart_top=top,
        chart_ticks=[0, top // 2, top],
        cause=records.cause,
        **extra,
    )


@router.get("/")
def home(request: Request, me: Me) -> Response:
    return _home(request, me)


@router.get("/postings")
@refusals_on(
    "portal/postings.html",
    keep=("start", "end"),
    fragment="portal/_postings.html",
    input_only=True,
)
def postings(request: Request, me: Me, period: PeriodQuery) -> Response:
    found = records.postings(
        services_of(request).uow(),
        actor=person_actor(me),
        channel=Channel.PORTAL,
        person_id=me.id,
        start=period.start,
        end=period.end,
    )
    partial = bool(request.headers.get("hx-request"))
    return PAGES.page(
        request,
        "portal/_postings.html" if partial else "portal/postings.html",
        person=me,
        lines=found.lines,
        family=found.family,
        start=found.start,
        end=found.end,
        cause=records.cause,
    )


@router.get("/payments")
def payments(request: Request, me: Me) -> Response:
    rows = records.payment_list(
        services_of(request).uow(), actor=person_actor(me), channel=Channel.PORTAL, person_id=me.id
    )
    return PAGES.page(request, "portal/payments.html", person=me, rows=rows)


@router.get("/visits")
def visits(request: Request, me: Me) -> Response:
    rows = records.visits(
        services_of(request).uow(), actor=person_actor(me), channel=Channel.PORTAL, person_id=me.id
    )
    return PAGES.page(request, "portal/visits.html", person=me, rows=rows)


@router.get("/rights")
def rights(request: Request, me: Me) -> Response:
    rec = records.rights(
        services_of(request).uow(), actor=person_actor(me), channel=Channel.PORTAL, person_id=me.id
    )
    return PAGES.page(
        request,
        "portal/rights.html",
        person=me,
        rec=rec,
        cause=records.cause,
    )


@router.get("/statement")
def statement_form(request: Request, me: Me) -> Response:
    lo, hi = records.default_period(services_of(request).clock.today())
    return PAGES.page(request, "portal/statement.html", person=me, start=lo, end=hi)


@router.get("/statement.pdf")
@refusals_on("portal/statement.html", keep=("start", "end"), input_only=True)
def statement_pdf(request: Request, me: Me, period: PeriodQuery) -> Response:
    lo, hi, pdf = records.statement(
        services_of(request).uow(),
        actor=person_actor(me),
        channel=Channel.PORTAL,
        person_id=me.id,
        start=period.start,
        end=period.end,
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
    return PAGES.page(request, "portal/password.html", person=me)


@router.post("/password")
@refusals_on("portal/password.html")
def change_password(request: Request, me: Me, _: Checked, form: PasswordForm) -> Response:
    opened = person_login.change_password(
        services_of(request).uow(),
        person_id=me.id,
        channel=Channel.PORTAL,
        old=form.old_password,
        new=form.new_password,
        new2=form.new_password2,
    )
    return PAGES.renewed(
        request,
        PortalSession(me, opened.csrf),
        opened.token,
        "portal/password.html",
        person=me,
        changed=True,
    )


@router.post("/phone-pin")
@refusals_on("portal/password.html", key="pin_error")
def set_phone_pin(request: Request, me: Me, _: Checked, form: PhonePinForm) -> Response:
    """Set the 6-digit PIN the telephone line asks for."""
    person_login.set_phone_pin(
        services_of(request).uow(),
        person_id=me.id,
        channel=Channel.PORTAL,
        password=form.phone_password,
        pin=form.phone_pin,
        pin2=form.phone_pin2,
    )
    return PAGES.page(request, "portal/password.html", person=me, pin_set=True)


@router.post("/lost")
def report_lost(request: Request, me: Me, _: Checked, form: CardForm) -> Response:
    """The person reports their own card lost; it is blocked at once, and
    the first page says so."""
    card = card_service.report_lost(
        services_of(request).uow(),
        actor=person_actor(me),
        channel=Channel.PORTAL,
        person_id=me.id,
        card_no=form.card_no,
        reason="reported lost on the portal",
    )
    return _home(request, me, done="lost", done_card=card.card_no)


@router.post("/found")
def undo_loss(request: Request, me: Me, _: Checked, form: FoundForm) -> Response:
    """The person found the card again (解挂), with the password given again.
    A refusal (a wrong password, a card that cannot come back) is shown on
    the first page, at the form."""
    try:
        card = self_service.undo_loss(
            services_of(request).uow(),
            person_id=me.id,
            card_no=form.card_no,
            password=form.password,
            channel=Channel.PORTAL,
        )
    except DomainError as exc:
        if exc.code == "portal.locked":
            raise  # the message page: the lock refuses every page's password
        return _home(request, me, exc.status, found_error=error_text(request, exc))
    return _home(request, me, done="found", done_card=card.card_no)


@router.get("/voucher")
def voucher(request: Request, me: Me) -> Response:
    return PAGES.page(request, "portal/voucher.html", person=me)


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
    return PAGES.page(
        request, "portal/_voucher.html", person=me, svg=qr_svg(token), expires=expires
    )


@router.api_route("/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def nowhere(request: Request) -> Response:
    raise no_such_page()


# ---- issue 16: off-site care

OffsiteForm = Annotated[forms.OffsiteFiling, Depends(forms.posted(forms.OffsiteFiling))]
OffsiteRef = Annotated[forms.OffsiteRef, Depends(forms.routed(forms.OffsiteRef))]
OFFSITE_KEPT = ("kind", "visit_area", "start", "end")


def _offsite(request: Request, me: PersonView, status: int = 200, **extra: Any) -> Response:
    """The person's filings for care in another area, each with its state,
    and the form to file one; ``extra``: what was just done, or why not."""
    rows = offsite.filings(
        services_of(request).uow(), actor=person_actor(me), channel=Channel.PORTAL, person_id=me.id
    )
    return PAGES.page(request, "portal/offsite.html", status, person=me, rows=rows, **extra)


@router.get("/offsite")
def offsite_page(request: Request, me: Me) -> Response:
    return _offsite(request, me)


@router.post("/offsite")
@refusals_on("portal/offsite.html", keep=OFFSITE_KEPT, input_only=True)
def offsite_file(request: Request, me: Me, _: Checked, form: OffsiteForm) -> Response:
    """File for care in another area; a refusal is shown above the form,
    with the list and what was typed."""
    try:
        filed = offsite.file(
            services_of(request).uow(),
            actor=person_actor(me),
            channel=Channel.PORTAL,
            person_id=me.id,
            kind=form.kind,
            visit_area=form.visit_area,
            start=form.start,
            end=form.end,
        )
    except DomainError as exc:
        kept = {k: str(getattr(form, k) or "") for k in OFFSITE_KEPT}
        return _offsite(request, me, exc.status, error=error_text(request, exc), **kept)
    return _offsite(request, me, done="filed", done_id=filed.id)


@router.post("/offsite/{filing_id}/cancel")
def offsite_cancel(request: Request, me: Me, _: Checked, ref: OffsiteRef) -> Response:
    try:
        offsite.cancel(
            services_of(request).uow(),
            actor=person_actor(me),
            channel=Channel.PORTAL,
            person_id=me.id,
            filing_id=ref.id,
        )
    except DomainError as exc:
        if exc.status == 404:
            raise  # not the person's filing: the message page, like any other
        return _offsite(request, me, exc.status, error=error_text(request, exc))
    return _offsite(request, me, done="cancelled", done_id=ref.id)


# ---- issue 16: family mutual aid

FamilyBindForm = Annotated[forms.FamilyBind, Depends(forms.posted(forms.FamilyBind))]
FamilyRefForm = Annotated[forms.FamilyRef, Depends(forms.posted(forms.FamilyRef))]
FamilyPayForm = Annotated[forms.FamilyContribution, Depends(forms.posted(forms.FamilyContribution))]


def _family_page(request: Request, me: PersonView, status: int = 200, **extra: Any) -> Response:
    """Both sides of the person's family mutual aid, and what a form just
    did (``done``) or why it was refused (``error``)."""
    view = family_aid.family(
        services_of(request).uow(), actor=person_actor(me), channel=Channel.PORTAL, person_id=me.id
    )
    return PAGES.page(
        request,
        "portal/family.html",
        status,
        person=me,
        view=view,
        year=services_of(request).clock.today().year,
        # a resubmitted contribution form pays once: the key is the form's
        pay_key=secrets.token_urlsafe(16),
        **extra,
    )


def _family_do(request: Request, me: PersonView, done: str, act: Callable[[], object]) -> Response:
    try:
        act()
    except DomainError as exc:
        return _family_page(request, me, exc.status, error=error_text(request, exc))
    return _family_page(request, me, done=done)


@router.get("/family")
def family_home(request: Request, me: Me) -> Response:
    return _family_page(request, me)


@router.post("/family/bind")
def family_bind(request: Request, me: Me, _: Checked, form: FamilyBindForm) -> Response:
    """The holder asks to pay for a relative; the relative confirms."""
    return _family_do(
        request,
        me,
        "bind",
        lambda: family_aid.bind(
            services_of(request).uow(),
            actor=person_actor(me),
            channel=Channel.PORTAL,
            holder_id=me.id,
            certno=form.certno,
            name=form.name,
            relation=form.relation,
        ),
    )


@router.post("/family/confirm")
def family_confirm(request: Request, me: Me, _: Checked, form: FamilyRefForm) -> Response:
    return _family_do(
        request,
        me,
        "confirm",
        lambda: family_aid.confirm(
            services_of(request).uow(),
            actor=person_actor(me),
            channel=Channel.PORTAL,
            relative_id=me.id,
            binding_id=form.binding,
        ),
    )


@router.post("/family/unbind")
def family_unbind(request: Request, me: Me, _: Checked, form: FamilyRefForm) -> Response:
    return _family_do(
        request,
        me,
        "unbind",
        lambda: family_aid.unbind(
            services_of(request).uow(),
            actor=person_actor(me),
            channel=Channel.PORTAL,
            person_id=me.id,
            binding_id=form.binding,
        ),
    )


@router.post("/family/first")
def family_first(request: Request, me: Me, _: Checked, form: FamilyRefForm) -> Response:
    return _family_do(
        request,
        me,
        "first",
        lambda: family_aid.put_first(
            services_of(request).uow(),
            actor=person_actor(me),
            channel=Channel.PORTAL,
            relative_id=me.id,
            binding_id=form.binding,
        ),
    )


@router.post("/family/contribution")
def family_contribution(request: Request, me: Me, _: Checked, form: FamilyPayForm) -> Response:
    return _family_do(
        request,
        me,
        "contribution",
        lambda: family_aid.pay_contribution(
            services_of(request).uow(),
            actor=person_actor(me),
            channel=Channel.PORTAL,
            holder_id=me.id,
            binding_id=form.binding,
            year=form.year,
            key=form.key,
        ),
    )


# the catch-all answers only what no route above it does: it stays last


# the catch-all answers last: routes added above would otherwise never be reached
router.routes.sort(key=lambda r: getattr(r, "path", "") == "/{rest:path}")
