"""The staff counter console under /counter/: find a person in the clerk's
area, record the document checked, then show and do the visit's business.

Each route parses its form, query and path (``forms``), finds the clerk
behind the session cookie, calls one use case with a fresh unit of work and
renders. The rules (which document opens a person's file, whose card an
action may touch) are the services'; a refusal (``DomainError``) is shown on
the page it came from by the handler the route declares (``on_refusal``).

The clerk's session is a staff credential on the server
(``staff_credentials``): the signed ``yb_counter`` cookie carries its token,
its CSRF token and the visit in progress, and log-out revokes the credential,
so that a copy of the cookie stops working with it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from yibao.channels.web import forms
from yibao.channels.web.common import (
    CSRF_REFUSED,
    Redirect,
    SignedCookie,
    channel_route,
    error_text,
    new_csrf,
    no_such_page,
    on_refusal,
    render,
    require_csrf,
    see_other,
    services_of,
)
from yibao.domain import values
from yibao.domain.actors import Actor, Channel
from yibao.domain.cards import Path
from yibao.domain.errors import DomainError
from yibao.domain.visits import DOCUMENTS, Visit, require_visit
from yibao.services.access import employer_login, person_login
from yibao.services.access import staff as access_service
from yibao.services.access import terminals as kiosk_service
from yibao.services.cards import batches
from yibao.services.cards import cards as card_service
from yibao.services.closing import closing
from yibao.services.contributions import contributions, enrolment
from yibao.services.family import family as family_aid
from yibao.services.inquiry import person_file, records
from yibao.services.registry import registry, visits
from yibao.services.settlement import offsite
from yibao.store.uow import UnitOfWork

SESSION = SignedCookie("yb_counter", "/counter", 8 * 3600)
LOGIN = "/counter/login"


@dataclass(frozen=True)
class Clerk:
    actor: Actor
    credential_id: int
    data: dict[str, Any]  # the console's signed session: token, csrf, the visit


def _clerk(request: Request, *, csrf: str | None = None) -> Clerk:
    """The clerk behind the session cookie, or to the log-in page; for a
    form, also its CSRF token."""
    data = SESSION.load(request)
    token = data.get("token")
    if not isinstance(token, str):
        raise Redirect(LOGIN)
    try:
        who = access_service.authenticate_request(
            services_of(request).uow(), token=token, csrf=csrf, change=csrf is not None
        )
    except DomainError as exc:
        if exc.code == "auth.required":  # logged out, expired or revoked
            raise Redirect(LOGIN) from None
        if exc.code == "auth.csrf":  # said for a page, not for an API client's header
            raise dataclasses.replace(CSRF_REFUSED) from None
        raise
    return Clerk(who.actor, who.credential_id, data)


def _uow(request: Request) -> UnitOfWork:
    return services_of(request).uow()


def _visit(data: dict[str, Any]) -> Visit | None:
    v = data.get("visit") or {}
    if not v.get("person_id"):
        return None
    return Visit(str(v.get("account_no")), int(v["person_id"]), str(v.get("document")))


def _page(
    request: Request, data: dict[str, Any], template: str, status: int = 200, **context: Any
) -> Response:
    data.setdefault("csrf", new_csrf())
    return render(request, template, status, csrf=data["csrf"], **context)


def _search_page(
    request: Request, status: int = 200, *, actor: Actor | None = None, **context: Any
) -> Response:
    return _page(
        request,
        SESSION.load(request),
        "counter/search.html",
        status,
        actor=actor,
        documents=DOCUMENTS,
        **context,
    )


def _person_page(
    request: Request, clerk: Clerk, account_no: str, status: int = 200, **context: Any
) -> Response:
    """The visit's person: balance and card state from the account summary,
    shown to staff whatever the card's state."""
    here = _visit(clerk.data)
    found = person_file.visit_file(
        _uow(request), actor=clerk.actor, channel=Channel.COUNTER, visit=here, account_no=account_no
    )
    return _page(
        request,
        clerk.data,
        "counter/person.html",
        status,
        actor=clerk.actor,
        person=found.person,
        document=here.document if here else None,
        balance=found.summary.balance,
        summary=found.summary,
        lines=found.summary.recent,
        payments=found.payments,
        cards=found.cards,
        current=found.current,
        cause=records.cause,
        month_text=contributions.month_text,
        materials=card_service.MATERIALS,
        paths=[p.value for p in Path if p is not Path.EMPLOYER],
        **context,
    )


# One error handler for the console: each route declares the page its
# refusals are shown on (``on_refusal``); without one, the visit's person
# page or the search page. No session sends the clerk to log in.
CounterRefusal = Callable[[Request, DomainError, dict[str, str]], Response]


def _default_error(request: Request, exc: DomainError, fields: dict[str, str]) -> Response:
    account_no = fields.get("account_no")
    if account_no:
        try:
            clerk = _clerk(request)
            return _person_page(
                request, clerk, account_no, exc.status, error=error_text(request, exc)
            )
        except (Redirect, DomainError):
            pass  # no visit for this person (or no clerk): the search page says why
    return _search_page(request, exc.status, error=error_text(request, exc))


def _refused(
    request: Request, exc: DomainError, page: CounterRefusal | None, fields: dict[str, str]
) -> Response:
    return (page or _default_error)(request, exc, fields)


router = APIRouter(route_class=channel_route(_refused))

GivenCsrf = Annotated[str, Depends(forms.csrf_given)]
LoginForm = Annotated[forms.CounterLogin, Depends(forms.posted(forms.CounterLogin))]
SearchQuery = Annotated[forms.Search, Depends(forms.queried(forms.Search))]
VisitForm = Annotated[forms.VisitForm, Depends(forms.posted(forms.VisitForm))]
PersonRef = Annotated[forms.PersonRef, Depends(forms.routed(forms.PersonRef))]
ActionRef = Annotated[forms.ActionRef, Depends(forms.routed(forms.ActionRef))]
ActionForm = Annotated[forms.CardAction, Depends(forms.posted(forms.CardAction))]
ApplicationsQuery = Annotated[forms.Applications, Depends(forms.queried(forms.Applications))]
BatchForm = Annotated[forms.BatchUpload, Depends(forms.posted(forms.BatchUpload))]
TerminalForm = Annotated[forms.TerminalForm, Depends(forms.posted(forms.TerminalForm))]
TerminalRef = Annotated[forms.TerminalRef, Depends(forms.routed(forms.TerminalRef))]
ConfirmForm = Annotated[forms.Confirmation, Depends(forms.posted(forms.Confirmation))]
ClosureForm = Annotated[forms.Closure, Depends(forms.posted(forms.Closure))]
CardRef = Annotated[forms.CardRef, Depends(forms.routed(forms.CardRef))]
ReadyForm = Annotated[forms.ReadyForm, Depends(forms.posted(forms.ReadyForm))]


# ---------------------------------------------------------------- log in and out


@router.get("/login")
def login_form(request: Request) -> Response:
    data = SESSION.load(request)
    response = _page(request, data, "counter/login.html")
    SESSION.save(request, response, data)
    return response


def _login_error(request: Request, exc: DomainError, fields: dict[str, str]) -> Response:
    data = SESSION.load(request)
    response = _page(
        request,
        data,
        "counter/login.html",
        exc.status,
        error=error_text(request, exc),
        username=fields.get("username", "") if exc.code != "web.csrf" else "",
    )
    SESSION.save(request, response, data)
    return response


@router.post("/login")
@on_refusal(_login_error)
def login(request: Request, given: GivenCsrf, form: LoginForm) -> Response:
    token = SESSION.load(request).get("csrf")
    require_csrf(token if isinstance(token, str) else None, given)
    svc = services_of(request)
    done = access_service.login(
        svc.uow(),
        username=form.username,
        password=form.password,
        channel=Channel.COUNTER,
        session_hours=svc.settings.session_hours,
        max_failures=svc.settings.staff_login_max_failures,
        lock_minutes=svc.settings.staff_login_lock_minutes,
    )
    response = see_other("/counter/")
    SESSION.save(request, response, {"token": done.token, "csrf": done.csrf_token})
    return response


@router.post("/logout")
def logout(request: Request, given: GivenCsrf) -> Response:
    """Revoke the clerk's credential on the server: a copy of the cookie
    stops working too. A forged log-out does nothing."""
    response = see_other(LOGIN)
    try:
        clerk = _clerk(request, csrf=given)
    except (Redirect, DomainError):
        return response
    access_service.log_out(_uow(request), credential_id=clerk.credential_id)
    SESSION.clear(response)
    return response


# ---------------------------------------------------------------- finding a person


@router.get("/")
def start(request: Request) -> Response:
    clerk = _clerk(request)
    reviews = enrolment.review_counts(_uow(request), actor=clerk.actor, channel=Channel.COUNTER)
    return _page(
        request,
        clerk.data,
        "counter/search.html",
        actor=clerk.actor,
        documents=DOCUMENTS,
        reviews=reviews,
    )


def _search_error(request: Request, exc: DomainError, fields: dict[str, str]) -> Response:
    q = {k: fields.get(k, "") for k in ("certno", "card_no", "name")}
    template = (
        "counter/_results.html" if request.headers.get("hx-request") else "counter/search.html"
    )
    clerk = _clerk(request)
    return _page(
        request,
        clerk.data,
        template,
        exc.status,
        actor=clerk.actor,
        documents=DOCUMENTS,
        error=error_text(request, exc),
        q=q,
    )


@router.get("/search")
@on_refusal(_search_error)
def search(request: Request, q: SearchQuery) -> Response:
    clerk = _clerk(request)
    template = (
        "counter/_results.html" if request.headers.get("hx-request") else "counter/search.html"
    )
    persons = registry.search_persons(
        _uow(request),
        actor=clerk.actor,
        channel=Channel.COUNTER,
        query=registry.PersonQuery(
            certno=q.certno or None, card_no=q.card_no or None, name=q.name or None
        ),
    )
    return _page(
        request,
        clerk.data,
        template,
        actor=clerk.actor,
        persons=persons,
        searched=True,
        documents=DOCUMENTS,
        q={"certno": q.certno, "card_no": q.card_no, "name": q.name},
    )


def _visit_error(request: Request, exc: DomainError, fields: dict[str, str]) -> Response:
    return _search_page(request, exc.status, error=error_text(request, exc))


@router.post("/visit")
@on_refusal(_visit_error)
def visit(request: Request, given: GivenCsrf, form: VisitForm) -> Response:
    """Record which document was checked; only then is the person shown."""
    clerk = _clerk(request, csrf=given)
    done = visits.record_visit(
        _uow(request),
        actor=clerk.actor,
        channel=Channel.COUNTER,
        account_no=form.account_no,
        document=form.document,
    )
    response = see_other(f"/counter/person/{done.account_no}")
    data = dict(clerk.data)
    data["visit"] = {
        "account_no": done.account_no,
        "person_id": done.person_id,
        "document": done.document,
    }
    SESSION.save(request, response, data)
    return response


@router.get("/person/{account_no}")
@on_refusal(_visit_error)
def person(request: Request, ref: PersonRef) -> Response:
    return _person_page(request, _clerk(request), ref.account_no)


# ---------------------------------------------------------------- the visit's business

# Each action of a visit: what it reads from the form, the one use case it
# calls for the visit's person, and what the page then says. A card action
# is always about the visit's person: the service refuses a card that is
# somebody else's (card.not_holder).


@dataclass(frozen=True)
class Act:
    actor: Actor
    visit: Visit
    form: forms.CardAction


def _apply(uow: UnitOfWork, a: Act) -> dict[str, Any]:
    res = card_service.apply_for_card(
        uow,
        actor=a.actor,
        channel=Channel.COUNTER,
        path=a.form.path,
        person_id=a.visit.person_id,
        materials=a.form.materials,
        kind=a.form.kind,
        pin=a.form.pin or None,
        delegate_certno=a.form.delegate_certno or None,
        delegate_name=a.form.delegate_name or None,
    )
    return {
        "card_no": res.card.card_no,
        "pin": res.pin,
        "app_no": res.application.app_no if res.application else "",
    }


def _collect(uow: UnitOfWork, a: Act) -> dict[str, Any]:
    res = card_service.collect_card(
        uow,
        actor=a.actor,
        channel=Channel.COUNTER,
        person_id=a.visit.person_id,
        card_no=a.form.card_no,
        # without a collector named, the person collects it themselves
        collector_certno=a.form.collector_certno or None,
        pin=a.form.pin or None,
    )
    return {"card_no": res.card.card_no, "pin": res.pin}


def _reissue(uow: UnitOfWork, a: Act) -> dict[str, Any]:
    res = card_service.reissue(
        uow,
        actor=a.actor,
        channel=Channel.COUNTER,
        person_id=a.visit.person_id,
        card_no=a.form.card_no,
        materials=a.form.materials,
        reason=a.form.reason,
        pin=a.form.pin or None,
    )
    return {"card_no": res.card.card_no, "pin": res.pin}


def _pin(uow: UnitOfWork, a: Act) -> dict[str, Any]:
    res = card_service.reset_pin(
        uow,
        actor=a.actor,
        channel=Channel.COUNTER,
        person_id=a.visit.person_id,
        card_no=a.form.card_no,
        pin=a.form.pin or None,
    )
    return {"card_no": res.card.card_no, "pin": res.pin}


def _activation(uow: UnitOfWork, a: Act) -> dict[str, Any]:
    code, expires = person_login.issue_activation_code(
        uow, actor=a.actor, channel=Channel.COUNTER, person_id=a.visit.person_id
    )
    return {"code": code, "expires": expires}


def _reason_move(move: Any) -> Callable[[UnitOfWork, Act], dict[str, Any]]:
    """A move of the card that takes only a reason (loss, its undo, cancellation)."""

    def do(uow: UnitOfWork, a: Act) -> dict[str, Any]:
        card = move(
            uow,
            actor=a.actor,
            channel=Channel.COUNTER,
            person_id=a.visit.person_id,
            card_no=a.form.card_no,
            reason=a.form.reason,
        )
        return {"card_no": card.card_no}

    return do


def _ready(uow: UnitOfWork, a: Act) -> dict[str, Any]:
    card = card_service.mark_ready(
        uow,
        actor=a.actor,
        channel=Channel.COUNTER,
        card_no=a.form.card_no,
        person_id=a.visit.person_id,
    )
    return {"card_no": card.card_no}


ACTIONS: dict[str, Callable[[UnitOfWork, Act], dict[str, Any]]] = {
    "apply": _apply,
    "ready": _ready,
    "collect": _collect,
    "lost": _reason_move(card_service.report_lost),
    "found": _reason_move(card_service.report_found),
    "reissue": _reissue,
    "pin": _pin,
    "activation": _activation,
    "cancel": _reason_move(card_service.cancel_card),
}


# ---------------------------------------------------------------- confirming what cannot be undone

# An irreversible action (a card cancelled, a card replaced, an account
# closed) is done on a second submit only: the first one is checked by the
# service (``check_*``: a refusal comes at once) and answered with a page
# that names what will happen; its form carries a random token, kept with
# a digest of the fields in the clerk's signed session. Only that token,
# with the same fields, for the same person, does it; posting once, or
# replaying an old token, asks again.


def _digest(action: str, account_no: str, fields: dict[str, Any]) -> str:
    text = json.dumps([action, account_no, fields], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _confirmed(clerk: Clerk, digest: str, token: str) -> bool:
    pending = clerk.data.get("confirm")
    if not token or not isinstance(pending, dict):
        return False
    return hmac.compare_digest(str(pending.get("token", "")), token) and hmac.compare_digest(
        str(pending.get("digest", "")), digest
    )


def _ask_to_confirm(
    request: Request,
    clerk: Clerk,
    *,
    action: str,
    account_no: str,
    fields: dict[str, Any],
    **context: Any,
) -> Response:
    token = secrets.token_urlsafe(24)
    data = dict(clerk.data)
    data["confirm"] = {"token": token, "digest": _digest(action, account_no, fields)}
    found = person_file.visit_file(
        _uow(request),
        actor=clerk.actor,
        channel=Channel.COUNTER,
        visit=_visit(clerk.data),
        account_no=account_no,
    )
    response = _page(
        request,
        data,
        "counter/confirm.html",
        actor=clerk.actor,
        person=found.person,
        action=action,
        fields=fields,
        token=token,
        **context,
    )
    SESSION.save(request, response, data)
    return response


def _done(request: Request, clerk: Clerk, response: Response) -> Response:
    """The confirmed action is done: its token is spent."""
    data = dict(clerk.data)
    data.pop("confirm", None)
    SESSION.save(request, response, data)
    return response


def _card_fields(action: str, form: forms.CardAction) -> dict[str, Any]:
    if action == "reissue":
        return {
            "card_no": form.card_no,
            "reason": form.reason,
            "materials": sorted(form.materials),
            "pin": form.pin,
        }
    return {"card_no": form.card_no, "reason": form.reason}


def _check_card_action(request: Request, clerk: Clerk, here: Visit, action: str, form: Any) -> Any:
    """What the irreversible card action would touch, checked by its service."""
    if action == "cancel":
        return card_service.check_cancel(
            _uow(request),
            actor=clerk.actor,
            channel=Channel.COUNTER,
            person_id=here.person_id,
            card_no=form.card_no,
            reason=form.reason,
        )
    return card_service.check_reissue(
        _uow(request),
        actor=clerk.actor,
        channel=Channel.COUNTER,
        person_id=here.person_id,
        card_no=form.card_no,
        materials=form.materials,
        reason=form.reason,
        pin=form.pin or None,
    )


IRREVERSIBLE = ("cancel", "reissue")


@router.post("/person/{account_no}/close")
def close(
    request: Request, ref: PersonRef, given: GivenCsrf, form: ClosureForm, ok: ConfirmForm
) -> Response:
    """Close the visit's person's account, once the clerk has confirmed what
    it does (the balance paid out or carried, the card cancelled)."""
    clerk = _clerk(request, csrf=given)
    here = require_visit(_visit(clerk.data), ref.account_no)
    fields = {"kind": form.kind, "destination_area": form.destination_area, "reason": form.reason}
    digest = _digest("close", here.account_no, fields)
    if not _confirmed(clerk, digest, ok.confirm):
        plan = closing.check_closure(
            _uow(request),
            actor=clerk.actor,
            channel=Channel.COUNTER,
            account_no=here.account_no,
            kind=form.kind,
            destination_area=form.destination_area or None,
        )
        return _ask_to_confirm(
            request, clerk, action="close", account_no=here.account_no, fields=fields, plan=plan
        )
    closure, _person = closing.close_account(
        _uow(request),
        actor=clerk.actor,
        channel=Channel.COUNTER,
        account_no=here.account_no,
        kind=form.kind,
        reason=form.reason,
        destination_area=form.destination_area or None,
    )
    result = {
        "done": "close",
        "closure_no": closure.closure_no,
        "balance": closure.balance,
        "card_no": closure.card_no or "",
    }
    return _done(request, clerk, _person_page(request, clerk, ref.account_no, result=result))


@router.post("/person/{account_no}/{action}")
def act(
    request: Request, ref: ActionRef, given: GivenCsrf, form: ActionForm, ok: ConfirmForm
) -> Response:
    clerk = _clerk(request, csrf=given)
    do = ACTIONS.get(ref.action)
    if do is None:
        return _person_page(request, clerk, ref.account_no, 404)
    here = require_visit(_visit(clerk.data), ref.account_no)
    if ref.action in IRREVERSIBLE:
        fields = _card_fields(ref.action, form)
        if not _confirmed(clerk, _digest(ref.action, here.account_no, fields), ok.confirm):
            card = _check_card_action(request, clerk, here, ref.action, form)
            return _ask_to_confirm(
                request,
                clerk,
                action=ref.action,
                account_no=here.account_no,
                fields=fields,
                card=card,
            )
    result = do(_uow(request), Act(clerk.actor, here, form))
    response = _person_page(request, clerk, ref.account_no, result={"done": ref.action, **result})
    return _done(request, clerk, response) if ref.action in IRREVERSIBLE else response


# ---------------------------------------------------------------- lists and batches


def _applications_error(request: Request, exc: DomainError, fields: dict[str, str]) -> Response:
    clerk = _clerk(request)
    return _page(
        request,
        clerk.data,
        "counter/applications.html",
        exc.status,
        actor=clerk.actor,
        rows=[],
        view=fields.get("view", "due"),
        error=error_text(request, exc),
    )


@router.get("/applications")
@on_refusal(_applications_error)
def applications(request: Request, q: ApplicationsQuery) -> Response:
    clerk = _clerk(request)
    rows = card_service.list_applications(
        _uow(request), actor=clerk.actor, channel=Channel.COUNTER, view=q.view
    )
    return _page(
        request, clerk.data, "counter/applications.html", actor=clerk.actor, rows=rows, view=q.view
    )


@router.post("/cards/{card_no}/ready")
@on_refusal(_applications_error)
def card_ready(request: Request, ref: CardRef, given: GivenCsrf, form: ReadyForm) -> Response:
    """From the list of applications due: the card is produced and ready for
    pickup (the county center, or the service point that took it)."""
    clerk = _clerk(request, csrf=given)
    card = card_service.mark_ready(
        _uow(request), actor=clerk.actor, channel=Channel.COUNTER, card_no=ref.card_no
    )
    rows = card_service.list_applications(
        _uow(request), actor=clerk.actor, channel=Channel.COUNTER, view=form.view
    )
    return _page(
        request,
        clerk.data,
        "counter/applications.html",
        actor=clerk.actor,
        rows=rows,
        view=form.view,
        ready=card,
    )


@router.get("/enrolments")
def enrolments(request: Request) -> Response:
    """Enrolment applications waiting for review, the overdue ones marked."""
    clerk = _clerk(request)
    rows = enrolment.list_pending(_uow(request), actor=clerk.actor, channel=Channel.COUNTER)
    return _page(request, clerk.data, "counter/enrolments.html", actor=clerk.actor, rows=rows)


@router.get("/batch")
def batch_form(request: Request) -> Response:
    clerk = _clerk(request)
    return _page(request, clerk.data, "counter/batch.html", actor=clerk.actor)


BATCH_FIELDS = ("employer_uscc", "letter_ref", "handler_certno", "handler_name")


def _batch_error(request: Request, exc: DomainError, fields: dict[str, str]) -> Response:
    clerk = _clerk(request)
    return _page(
        request,
        clerk.data,
        "counter/batch.html",
        exc.status,
        actor=clerk.actor,
        form={k: fields.get(k, "") for k in BATCH_FIELDS},
        error=error_text(request, exc),
    )


@router.post("/batch")
@on_refusal(_batch_error)
def batch_upload(request: Request, given: GivenCsrf, form: BatchForm) -> Response:
    clerk = _clerk(request, csrf=given)
    # read here, off the event loop: the form keeps the file spooled
    content = values.upload(
        form.upload.file.read, most=services_of(request).settings.upload_max_bytes
    )
    res = batches.upload_batch(
        _uow(request),
        actor=clerk.actor,
        channel=Channel.COUNTER,
        employer_uscc=form.employer_uscc,
        letter_ref=form.letter_ref,
        handler_certno=form.handler_certno,
        handler_name=form.handler_name,
        materials=form.materials,
        filename=(form.upload.filename or "upload.csv")[:200],
        content=content,
    )
    return _page(
        request,
        clerk.data,
        "counter/batch.html",
        actor=clerk.actor,
        form={k: getattr(form, k) for k in BATCH_FIELDS},
        batch=res.batch,
        rows=res.batch.results,
    )


# ---------------------------------------------------------------- an employer's activation code (issue 15)

EmployerCodeForm = Annotated[forms.EmployerCode, Depends(forms.posted(forms.EmployerCode))]


def _employer_code_error(request: Request, exc: DomainError, fields: dict[str, str]) -> Response:
    clerk = _clerk(request)
    return _page(
        request,
        clerk.data,
        "counter/employer_code.html",
        exc.status,
        actor=clerk.actor,
        employer_uscc=fields.get("employer_uscc", ""),
        error=error_text(request, exc),
    )


@router.get("/employer-code")
def employer_code_form(request: Request) -> Response:
    clerk = _clerk(request)
    return _page(request, clerk.data, "counter/employer_code.html", actor=clerk.actor)


@router.post("/employer-code")
@on_refusal(_employer_code_error)
def employer_code(request: Request, given: GivenCsrf, form: EmployerCodeForm) -> Response:
    """The one-time code with which an employer sets its password on
    /employer/, issued at the county center and shown once."""
    clerk = _clerk(request, csrf=given)
    issued = employer_login.issue_activation_code(
        _uow(request), actor=clerk.actor, channel=Channel.COUNTER, uscc=form.employer_uscc
    )
    return _page(
        request, clerk.data, "counter/employer_code.html", actor=clerk.actor, issued=issued
    )


# ---------------------------------------------------------------- self-service terminals


def _terminals_page(request: Request, clerk: Clerk, status: int = 200, **context: Any) -> Response:
    """The terminals in the staff member's area, and the forms that manage them."""
    try:
        terminals = kiosk_service.list_terminals(_uow(request), actor=clerk.actor)
    except DomainError as exc:  # a role that does not manage terminals
        return _page(
            request,
            clerk.data,
            "counter/terminals.html",
            exc.status,
            actor=clerk.actor,
            terminals=[],
            error=error_text(request, exc),
        )
    now = services_of(request).clock.now()
    return _page(
        request,
        clerk.data,
        "counter/terminals.html",
        status,
        actor=clerk.actor,
        terminals=[(t, kiosk_service.terminal_state(t, now)) for t in terminals],
        divisions=[d for d in registry.list_divisions(_uow(request)) if clerk.actor.sees(d.code)],
        can_manage=True,
        **context,
    )


def _terminals_error(request: Request, exc: DomainError, fields: dict[str, str]) -> Response:
    clerk = _clerk(request)
    form = {k: fields[k] for k in ("code", "location", "division_code") if k in fields}
    return _terminals_page(
        request, clerk, exc.status, form=form or None, error=error_text(request, exc)
    )


@router.get("/terminals")
@on_refusal(_terminals_error)
def terminals(request: Request) -> Response:
    return _terminals_page(request, _clerk(request))


@router.post("/terminals")
@on_refusal(_terminals_error)
def register_terminal(request: Request, given: GivenCsrf, form: TerminalForm) -> Response:
    """Register a terminal; its first activation code is shown once."""
    clerk = _clerk(request, csrf=given)
    issued = kiosk_service.register_terminal(
        _uow(request),
        actor=clerk.actor,
        channel=Channel.COUNTER,
        code=form.code,
        location=form.location,
        division_code=form.division_code,
    )
    return _terminals_page(request, clerk, issued=issued)


def _issue(request: Request, clerk: Clerk, code: str) -> Response:
    issued = kiosk_service.issue_code(
        _uow(request), actor=clerk.actor, channel=Channel.COUNTER, code=code
    )
    return _terminals_page(request, clerk, issued=issued)


def _deactivate(request: Request, clerk: Clerk, code: str) -> Response:
    terminal = kiosk_service.deactivate_terminal(
        _uow(request), actor=clerk.actor, channel=Channel.COUNTER, code=code
    )
    return _terminals_page(request, clerk, deactivated=terminal.code)


TERMINAL_ACTIONS: dict[str, Callable[[Request, Clerk, str], Response]] = {
    "issue": _issue,
    "deactivate": _deactivate,
}


@router.post("/terminals/{code}/{action}")
@on_refusal(_terminals_error)
def terminal_action(request: Request, ref: TerminalRef, given: GivenCsrf) -> Response:
    """A new activation code for a terminal (shown once), or its deactivation."""
    clerk = _clerk(request, csrf=given)
    do = TERMINAL_ACTIONS.get(ref.action)
    if do is None:
        return _terminals_page(request, clerk, 404)
    return do(request, clerk, ref.code)


@router.api_route("/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def nowhere(request: Request) -> Response:
    _clerk(request)  # anyone else is sent to log in
    raise no_such_page()


# ---- issue 16: off-site care

OffsiteForm = Annotated[forms.OffsiteFiling, Depends(forms.posted(forms.OffsiteFiling))]
OffsiteRef = Annotated[forms.OffsiteRef, Depends(forms.routed(forms.OffsiteRef))]
OFFSITE_KEPT = ("kind", "visit_area", "start", "end")


def _offsite_page(
    request: Request, clerk: Clerk, account_no: str, status: int = 200, **context: Any
) -> Response:
    """The visit's person's filings for care in another area, the form to
    file one and a cancel button on each live one."""
    here = require_visit(_visit(clerk.data), account_no)
    found = person_file.visit_file(
        _uow(request), actor=clerk.actor, channel=Channel.COUNTER, visit=here, account_no=account_no
    )
    rows = offsite.filings(
        _uow(request), actor=clerk.actor, channel=Channel.COUNTER, person_id=here.person_id
    )
    return _page(
        request,
        clerk.data,
        "counter/offsite.html",
        status,
        actor=clerk.actor,
        person=found.person,
        rows=rows,
        **context,
    )


def _offsite_error(request: Request, exc: DomainError, fields: dict[str, str]) -> Response:
    """A refusal above the form, with the list and what was typed; without
    a visit for this person, where the console's other refusals go."""
    try:
        clerk = _clerk(request)
        kept = {k: fields.get(k, "") for k in OFFSITE_KEPT}
        return _offsite_page(
            request,
            clerk,
            fields.get("account_no", ""),
            exc.status,
            error=error_text(request, exc),
            **kept,
        )
    except (Redirect, DomainError):
        return _default_error(request, exc, fields)


@router.get("/person/{account_no}/offsite")
@on_refusal(_visit_error)
def offsite_page(request: Request, ref: PersonRef) -> Response:
    return _offsite_page(request, _clerk(request), ref.account_no)


@router.post("/person/{account_no}/offsite/file")
@on_refusal(_offsite_error)
def offsite_file(request: Request, ref: PersonRef, given: GivenCsrf, form: OffsiteForm) -> Response:
    clerk = _clerk(request, csrf=given)
    here = require_visit(_visit(clerk.data), ref.account_no)
    filed = offsite.file(
        _uow(request),
        actor=clerk.actor,
        channel=Channel.COUNTER,
        person_id=here.person_id,
        kind=form.kind,
        visit_area=form.visit_area,
        start=form.start,
        end=form.end,
    )
    return _offsite_page(request, clerk, ref.account_no, done="filed", done_id=filed.id)


@router.post("/person/{account_no}/offsite/{filing_id}/cancel")
@on_refusal(_offsite_error)
def offsite_cancel(request: Request, ref: OffsiteRef, given: GivenCsrf) -> Response:
    clerk = _clerk(request, csrf=given)
    here = require_visit(_visit(clerk.data), ref.account_no)
    offsite.cancel(
        _uow(request),
        actor=clerk.actor,
        channel=Channel.COUNTER,
        person_id=here.person_id,
        filing_id=ref.id,
    )
    return _offsite_page(request, clerk, ref.account_no, done="cancelled", done_id=ref.id)


# ---- issue 16: family mutual aid

FamilyBindForm = Annotated[forms.FamilyBind, Depends(forms.posted(forms.FamilyBind))]
FamilyRefForm = Annotated[forms.FamilyRef, Depends(forms.posted(forms.FamilyRef))]


def _family_page(
    request: Request, clerk: Clerk, account_no: str, status: int = 200, **context: Any
) -> Response:
    """The visit's person's family mutual aid: whom their account pays
    for, who pays for them, the payments both ways."""
    here = require_visit(_visit(clerk.data), account_no)
    view = family_aid.family(
        _uow(request), actor=clerk.actor, channel=Channel.COUNTER, person_id=here.person_id
    )
    return _page(
        request,
        clerk.data,
        "counter/family.html",
        status,
        actor=clerk.actor,
        view=view,
        documents=DOCUMENTS,
        **context,
    )


def _family_do(
    request: Request, clerk: Clerk, account_no: str, done: str, act: Callable[[int], object]
) -> Response:
    here = require_visit(_visit(clerk.data), account_no)
    try:
        act(here.person_id)
    except DomainError as exc:
        return _family_page(request, clerk, account_no, exc.status, error=error_text(request, exc))
    return _family_page(request, clerk, account_no, done=done)


@router.get("/family/{account_no}")
def family_home(request: Request, ref: PersonRef) -> Response:
    return _family_page(request, _clerk(request), ref.account_no)


@router.post("/family/{account_no}/bind")
def family_bind(
    request: Request, ref: PersonRef, given: GivenCsrf, form: FamilyBindForm
) -> Response:
    """The visit's person binds a relative whose document the clerk checked
    here: the relative's consent, so the binding takes effect at once."""
    clerk = _clerk(request, csrf=given)
    return _family_do(
        request,
        clerk,
        ref.account_no,
        "bind",
        lambda person_id: family_aid.bind(
            _uow(request),
            actor=clerk.actor,
            channel=Channel.COUNTER,
            holder_id=person_id,
            certno=form.certno,
            name=form.name,
            relation=form.relation,
            relative_document=form.relative_document,
        ),
    )


@router.post("/family/{account_no}/unbind")
def family_unbind(
    request: Request, ref: PersonRef, given: GivenCsrf, form: FamilyRefForm
) -> Response:
    clerk = _clerk(request, csrf=given)
    return _family_do(
        request,
        clerk,
        ref.account_no,
        "unbind",
        lambda person_id: family_aid.unbind(
            _uow(request),
            actor=clerk.actor,
            channel=Channel.COUNTER,
            person_id=person_id,
            binding_id=form.binding,
        ),
    )


# the catch-all answers only what no route above it does: it stays last


# the catch-all answers last: routes added above would otherwise never be reached
router.routes.sort(key=lambda r: getattr(r, "path", "") == "/{rest:path}")
