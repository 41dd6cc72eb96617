"""The employer's own channel under /employer/ (issue 15; Social Insurance
Law art. 4): an employer signs in with its unified social credit code and
a password, keeps its roll (hires and leavers), sees each month's assessment,
what it paid and when, its arrears and each employee's months, and uploads
a batch card application.

As on the portal, each route parses its form (``forms``), calls one use case
and renders; the signed-in employer is a dependency (``Me``), a form's CSRF
token another (``Checked``), and a refusal is shown on the page the route
declares with ``refusals_on``. The session is kept on the server
(``employer_login.session_of``, kind ``employer``): the ``yb_employer_session``
cookie carries only its id. Every use case is called with the employer as
the actor, so that each read or change of an employee's data is audited as
the employer's.
"""

from __future__ import annotations

import contextlib
from typing import Annotated, Any

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
from yibao.domain import values
from yibao.domain.actors import Channel
from yibao.domain.errors import DomainError
from yibao.services.access import employer_login
from yibao.services.access.employer_login import EmployerSession, EmployerView
from yibao.services.cards import batches
from yibao.services.contributions import contributions, roll

SESSION = SessionCookie("yb_employer_session", "/employer")
# the pages before log-in: their CSRF token, for two hours
ANONYMOUS = SignedCookie("yb_employer", "/employer", 2 * 3600)
HOME = "/employer/"
LOGIN = "/employer/login"
PAGES = SessionPages(
    cookie=SESSION,
    anonymous=ANONYMOUS,
    session_of=employer_login.session_of,
    party=lambda live: live.employer,
    login=LOGIN,
    message=ErrorPage("employer/message.html"),
    me="me",
)


def _refused(
    request: Request, exc: DomainError, page: ErrorPage | None, form: dict[str, str]
) -> Response:
    """The channel's one error handler: the refusal on the route's page, with
    the form's harmless fields filled in again (never a password)."""
    page = PAGES.shown(page, exc)
    context: dict[str, Any] = {page.key: error_text(request, exc), "form": page.kept(form)}
    live = None
    with contextlib.suppress(DomainError):  # the database went away: the message alone
        live = PAGES.live(request)
    if live is not None and page.template in CONTENT:
        try:  # the page's own content, so that the refusal is read in place
            context = {**CONTENT[page.template](request, live.employer), **context}
        except DomainError:
            page = PAGES.message
    return PAGES.page(request, page.template, exc.status, **context)


router = APIRouter(route_class=channel_route(_refused))


Me = Annotated[EmployerView, Depends(PAGES.signed_in)]
Checked = Annotated[None, Depends(PAGES.checked)]
GivenCsrf = Annotated[str, Depends(forms.csrf_given)]
LoginForm = Annotated[forms.EmployerLogin, Depends(forms.posted(forms.EmployerLogin))]
ActivateForm = Annotated[forms.EmployerActivate, Depends(forms.posted(forms.EmployerActivate))]
HireForm = Annotated[forms.Hire, Depends(forms.posted(forms.Hire))]
LeaveForm = Annotated[forms.Leave, Depends(forms.posted(forms.Leave))]
PersonRef = Annotated[forms.PersonRef, Depends(forms.routed(forms.PersonRef))]
BatchForm = Annotated[forms.OwnBatch, Depends(forms.posted(forms.OwnBatch))]
PasswordForm = Annotated[forms.PasswordChange, Depends(forms.posted(forms.PasswordChange))]


# ---------------------------------------------------------------- what each page shows


def _roll(request: Request, me: EmployerView) -> dict[str, Any]:
    found = roll.read_roll(
        services_of(request).uow(), actor=me.actor, channel=Channel.EMPLOYER, employer_uscc=me.uscc
    )
    return {"roll": found}


def _contributions(request: Request, me: EmployerView) -> dict[str, Any]:
    account = contributions.employer_account(
        services_of(request).uow(), actor=me.actor, channel=Channel.EMPLOYER, employer_uscc=me.uscc
    )
    return {"account": account, "month_text": contributions.month_text}


def _batches(request: Request, me: EmployerView) -> dict[str, Any]:
    found = batches.own_batches(
        services_of(request).uow(), actor=me.actor, channel=Channel.EMPLOYER
    )
    return {"batches": found}


CONTENT = {
    "employer/roll.html": _roll,
    "employer/batch.html": _batches,
}


# ---------------------------------------------------------------- log in and out


@router.get("/login")
def login_form(request: Request) -> Response:
    return PAGES.page(request, "employer/login.html")


@router.post("/login")
@refusals_on("employer/login.html", keep=("uscc",))
def login(request: Request, _: Checked, form: LoginForm) -> Response:
    done = employer_login.login(
        services_of(request).uow(),
        uscc=form.uscc,
        password=form.password,
        channel=Channel.EMPLOYER,
        replacing=SESSION.token(request),
    )
    return PAGES.opened(request, done.opened.token, HOME)


@router.post("/logout")
def logout(request: Request, given: GivenCsrf) -> Response:
    return PAGES.log_out(
        request,
        given,
        lambda token: employer_login.log_out(
            services_of(request).uow(), token=token, channel=Channel.EMPLOYER
        ),
    )


@router.get("/activate")
def activate_form(request: Request) -> Response:
    return PAGES.page(request, "employer/activate.html")


@router.post("/activate")
@refusals_on("employer/activate.html", keep=("uscc",))
def activate(request: Request, _: Checked, form: ActivateForm) -> Response:
    employer_login.activate(
        services_of(request).uow(),
        uscc=form.uscc,
        code=form.code,
        password=form.password,
        password2=form.password2,
        channel=Channel.EMPLOYER,
    )
    return PAGES.page(request, "employer/login.html", activated=True, form={"uscc": form.uscc})


# ---------------------------------------------------------------- pages


@router.get("/")
def home(request: Request, me: Me) -> Response:
    return PAGES.page(
        request, "employer/home.html", **_roll(request, me), **_contributions(request, me)
    )


@router.get("/roll")
def roll_page(request: Request, me: Me) -> Response:
    return PAGES.page(request, "employer/roll.html", **_roll(request, me))


@router.post("/roll/hire")
@refusals_on("employer/roll.html", keep=("certno", "name", "start", "base"), key="hire_error")
def hire(request: Request, me: Me, _: Checked, form: HireForm) -> Response:
    done = roll.hire(
        services_of(request).uow(),
        actor=me.actor,
        channel=Channel.EMPLOYER,
        employer_uscc=me.uscc,
        certno=form.certno,
        name=form.name,
        start=form.start,
        base=form.base,
    )
    return PAGES.page(request, "employer/roll.html", hired=done, **_roll(request, me))


@router.post("/roll/leave")
@refusals_on("employer/roll.html", keep=("account_no", "end"), key="leave_error")
def leave(request: Request, me: Me, _: Checked, form: LeaveForm) -> Response:
    done = roll.leave(
        services_of(request).uow(),
        actor=me.actor,
        channel=Channel.EMPLOYER,
        employer_uscc=me.uscc,
        account_no=form.account_no,
        end=form.end,
    )
    return PAGES.page(request, "employer/roll.html", left=done, **_roll(request, me))


@router.get("/roll/{account_no}")
def employee(request: Request, me: Me, ref: PersonRef) -> Response:
    history = contributions.employee_history(
        services_of(request).uow(),
        actor=me.actor,
        channel=Channel.EMPLOYER,
        employer_uscc=me.uscc,
        account_no=ref.account_no,
    )
    return PAGES.page(
        request, "employer/employee.html", history=history, month_text=contributions.month_text
    )


@router.get("/contributions")
def contributions_page(request: Request, me: Me) -> Response:
    return PAGES.page(request, "employer/contributions.html", **_contributions(request, me))


@router.get("/batch")
def batch_form(request: Request, me: Me) -> Response:
    return PAGES.page(request, "employer/batch.html", **_batches(request, me))


@router.post("/batch")
@refusals_on("employer/batch.html", keep=("handler_certno", "handler_name"))
def batch_upload(request: Request, me: Me, _: Checked, form: BatchForm) -> Response:
    # read here, off the event loop: the form keeps the file spooled
    content = values.upload(
        form.upload.file.read, most=services_of(request).settings.upload_max_bytes
    )
    done = batches.upload_own_batch(
        services_of(request).uow(),
        actor=me.actor,
        channel=Channel.EMPLOYER,
        handler_certno=form.handler_certno,
        handler_name=form.handler_name,
        filename=(form.upload.filename or "upload.csv")[:200],
        content=content,
    )
    return PAGES.page(request, "employer/batch.html", uploaded=done.batch, **_batches(request, me))


@router.get("/password")
def password_form(request: Request, me: Me) -> Response:
    return PAGES.page(request, "employer/password.html")


@router.post("/password")
@refusals_on("employer/password.html")
def change_password(request: Request, me: Me, _: Checked, form: PasswordForm) -> Response:
    opened = employer_login.change_password(
        services_of(request).uow(),
        employer_id=me.id,
        channel=Channel.EMPLOYER,
        old=form.old_password,
        new=form.new_password,
        new2=form.new_password2,
    )
    return PAGES.renewed(
        request,
        EmployerSession(me, opened.csrf),
        opened.token,
        "employer/password.html",
        changed=True,
    )


@router.api_route("/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def nowhere(request: Request) -> Response:
    raise no_such_page()
