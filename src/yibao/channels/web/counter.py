"""The staff counter console under /counter/: find a person in the clerk's
area, record the document checked, then show and do the visit's business.

Each route parses the form, finds the clerk behind the session cookie, calls
one use case with a fresh unit of work and renders. The rules (which
document opens a person's file, whose card an action may touch) are the
services'; a refusal (``DomainError``) is shown on the page it came from by
``_counter_page``.
"""

from __future__ import annotations

import functools
import inspect
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData

from yibao.channels.web.common import (
    CSRF_REFUSED,
    WebSession,
    error_text,
    render,
    services_of,
)
from yibao.domain.actors import Actor, Channel
from yibao.domain.cards import CardKind, Path
from yibao.domain.errors import DomainError, invalid
from yibao.domain.visits import DOCUMENTS, Visit, require_visit
from yibao.services.access import person_login
from yibao.services.access import staff as access_service
from yibao.services.access import terminals as kiosk_service
from yibao.services.cards import batches
from yibao.services.cards import cards as card_service
from yibao.services.contributions import contributions
from yibao.services.inquiry import person_file, records
from yibao.services.registry import registry, visits
from yibao.store.uow import UnitOfWork

router = APIRouter()
SESSION = WebSession("yb_counter", "/counter", 8 * 3600)


def _go(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


class NotLoggedIn(Exception):
    pass


@dataclass(frozen=True)
class Clerk:
    actor: Actor
    credential_id: int
    data: dict[str, Any]  # the console's signed session: token, csrf, the visit


def _clerk(request: Request, *, csrf: str | None = None) -> Clerk:
    """The clerk behind the session cookie; for a form, also its CSRF token."""
    data = SESSION.load(request)
    if "token" not in data:
        raise NotLoggedIn
    try:
        who = access_service.authenticate_request(
            services_of(request).uow(),
            token=str(data["token"]),
            csrf=csrf,
            change=csrf is not None,
        )
    except DomainError as exc:
        if exc.code == "auth.required":
            raise NotLoggedIn from None
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
    data.setdefault("csrf", secrets.token_urlsafe(24))
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


# One error handler for the console: a refusal is shown on the page it came
# from; no session sends the clerk to log in.
OnError = Callable[[Request, DomainError, dict[str, Any]], Response]


def _default_error(request: Request, exc: DomainError, kwargs: dict[str, Any]) -> Response:
    account_no = kwargs.get("account_no")
    if account_no:
        try:
            clerk = _clerk(request)
            return _person_page(
                request, clerk, account_no, exc.status, error=error_text(request, exc)
            )
        except (NotLoggedIn, DomainError):
            pass  # no visit for this person (or no clerk): the search page says why
    return _search_page(request, exc.status, error=error_text(request, exc))


def _counter_page(
    on_error: OnError = _default_error,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def wrap(route: Callable[..., Any]) -> Callable[..., Any]:
        if inspect.iscoroutinefunction(route):

            @functools.wraps(route)
            async def run_async(request: Request, **kwargs: Any) -> Response:
                try:
                    response: Response = await route(request, **kwargs)
                except NotLoggedIn:
                    return _go("/counter/login")
                except DomainError as exc:
                    return on_error(request, exc, kwargs)
                return response

            return run_async

        @functools.wraps(route)
        def run(request: Request, **kwargs: Any) -> Response:
            try:
                response: Response = route(request, **kwargs)
            except NotLoggedIn:
                return _go("/counter/login")
            except DomainError as exc:
                return on_error(request, exc, kwargs)
            return response

        return run

    return wrap


# ---------------------------------------------------------------- log in and out


@router.get("/login")
def login_form(request: Request) -> Response:
    data = SESSION.load(request)
    response = _page(request, data, "counter/login.html")
    SESSION.save(request, response, data)
    return response


@router.post("/login")
def login(
    request: Request,
    username: str = Form(""),
    password: str = Form(""),
    csrf: str = Form(""),
) -> Response:
    data = SESSION.load(request)
    if not data.get("csrf") or data.get("csrf") != csrf:
        response = _page(
            request, data, "counter/login.html", 403, error=error_text(request, CSRF_REFUSED)
        )
        SESSION.save(request, response, data)
        return response
    svc = services_of(request)
    try:
        done = access_service.login(
            svc.uow(),
            username=username,
            password=password,
            channel=Channel.COUNTER,
            session_hours=svc.settings.session_hours,
            max_failures=svc.settings.staff_login_max_failures,
            lock_minutes=svc.settings.staff_login_lock_minutes,
        )
    except DomainError as exc:
        return _page(
            request,
            data,
            "counter/login.html",
            exc.status,
            error=error_text(request, exc),
            username=username,
        )
    response = _go("/counter/")
    SESSION.save(request, response, {"token": done.token, "csrf": done.csrf_token})
    return response


@router.post("/logout")
def logout(request: Request, csrf: str = Form("")) -> Response:
    response = _go("/counter/login")
    try:
        clerk = _clerk(request, csrf=csrf)
    except (NotLoggedIn, DomainError):
        return response
    access_service.log_out(_uow(request), credential_id=clerk.credential_id)
    SESSION.clear(response)
    return response


# ---------------------------------------------------------------- finding a person


@router.get("/")
@_counter_page()
def start(request: Request) -> Response:
    clerk = _clerk(request)
    return _page(request, clerk.data, "counter/search.html", actor=clerk.actor, documents=DOCUMENTS)


def _search_error(request: Request, exc: DomainError, kwargs: dict[str, Any]) -> Response:
    q = {k: kwargs.get(k, "") for k in ("certno", "card_no", "name")}
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
@_counter_page(_search_error)
def search(request: Request, certno: str = "", card_no: str = "", name: str = "") -> Response:
    clerk = _clerk(request)
    template = (
        "counter/_results.html" if request.headers.get("hx-request") else "counter/search.html"
    )
    persons = registry.search_persons(
        _uow(request),
        actor=clerk.actor,
        channel=Channel.COUNTER,
        query=registry.PersonQuery(
            certno=certno or None, card_no=card_no or None, name=name or None
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
        q={"certno": certno, "card_no": card_no, "name": name},
    )


def _visit_error(request: Request, exc: DomainError, kwargs: dict[str, Any]) -> Response:
    return _search_page(request, exc.status, error=error_text(request, exc))


@router.post("/visit")
@_counter_page(_visit_error)
def visit(
    request: Request, account_no: str = Form(""), document: str = Form(""), csrf: str = Form("")
) -> Response:
    """Record which document was checked; only then is the person shown."""
    clerk = _clerk(request, csrf=csrf)
    done = visits.record_visit(
        _uow(request),
        actor=clerk.actor,
        channel=Channel.COUNTER,
        account_no=account_no,
        document=document,
    )
    response = _go(f"/counter/person/{done.account_no}")
    data = dict(clerk.data)
    data["visit"] = {
        "account_no": done.account_no,
        "person_id": done.person_id,
        "document": done.document,
    }
    SESSION.save(request, response, data)
    return response


@router.get("/person/{account_no}")
@_counter_page(_visit_error)
def person(request: Request, account_no: str) -> Response:
    return _person_page(request, _clerk(request), account_no)


# ---------------------------------------------------------------- the visit's business

# Each action of a visit: what it reads from the form, the one use case it
# calls for the visit's person, and what the page then says. A card action
# is always about the visit's person: the service refuses a card that is
# somebody else's (card.not_holder).


@dataclass(frozen=True)
class Act:
    actor: Actor
    visit: Visit
    form: FormData

    def val(self, name: str) -> str:
        v = self.form.get(name)
        return v.strip() if isinstance(v, str) else ""

    @property
    def materials(self) -> list[str]:
        return [str(m) for m in self.form.getlist("materials")]


def _card_no(a: Act) -> str:
    return a.val("card_no")


def _apply(uow: UnitOfWork, a: Act) -> dict[str, Any]:
    res = card_service.apply_for_card(
        uow,
        actor=a.actor,
        channel=Channel.COUNTER,
        path=Path(a.val("path") or "county_center"),
        person_id=a.visit.person_id,
        materials=a.materials,
        kind=CardKind(a.val("kind") or "social_security"),
        pin=a.val("pin") or None,
        delegate_certno=a.val("delegate_certno") or None,
        delegate_name=a.val("delegate_name") or None,
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
        card_no=_card_no(a),
        # without a collector named, the person collects it themselves
        collector_certno=a.val("collector_certno") or None,
        pin=a.val("pin") or None,
    )
    return {"card_no": res.card.card_no, "pin": res.pin}


def _reissue(uow: UnitOfWork, a: Act) -> dict[str, Any]:
    res = card_service.reissue(
        uow,
        actor=a.actor,
        channel=Channel.COUNTER,
        person_id=a.visit.person_id,
        card_no=_card_no(a),
        materials=a.materials,
        reason=a.val("reason"),
        pin=a.val("pin") or None,
    )
    return {"card_no": res.card.card_no, "pin": res.pin}


def _pin(uow: UnitOfWork, a: Act) -> dict[str, Any]:
    res = card_service.reset_pin(
        uow,
        actor=a.actor,
        channel=Channel.COUNTER,
        person_id=a.visit.person_id,
        card_no=_card_no(a),
        pin=a.val("pin") or None,
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
            card_no=_card_no(a),
            reason=a.val("reason"),
        )
        return {"card_no": card.card_no}

    return do


ACTIONS: dict[str, Callable[[UnitOfWork, Act], dict[str, Any]]] = {
    "apply": _apply,
    "collect": _collect,
    "lost": _reason_move(card_service.report_lost),
    "found": _reason_move(card_service.report_found),
    "reissue": _reissue,
    "pin": _pin,
    "activation": _activation,
    "cancel": _reason_move(card_service.cancel_card),
}


@router.post("/person/{account_no}/{action}")
@_counter_page()
async def act(request: Request, account_no: str, action: str) -> Response:
    form = await request.form()
    csrf = form.get("csrf")
    clerk = _clerk(request, csrf=csrf if isinstance(csrf, str) else "")
    do = ACTIONS.get(action)
    if do is None:
        return _person_page(request, clerk, account_no, 404)
    here = require_visit(_visit(clerk.data), account_no)
    result = do(_uow(request), Act(clerk.actor, here, form))
    return _person_page(request, clerk, account_no, result={"done": action, **result})


# ---------------------------------------------------------------- lists and batches


def _applications_error(request: Request, exc: DomainError, kwargs: dict[str, Any]) -> Response:
    clerk = _clerk(request)
    return _page(
        request,
        clerk.data,
        "counter/applications.html",
        exc.status,
        actor=clerk.actor,
        rows=[],
        view=kwargs.get("view", "due"),
        error=error_text(request, exc),
    )


@router.get("/applications")
@_counter_page(_applications_error)
def applications(request: Request, view: str = "due") -> Response:
    clerk = _clerk(request)
    rows = card_service.list_applications(
        _uow(request), actor=clerk.actor, channel=Channel.COUNTER, view=view
    )
    return _page(
        request, clerk.data, "counter/applications.html", actor=clerk.actor, rows=rows, view=view
    )


@router.get("/batch")
@_counter_page()
def batch_form(request: Request) -> Response:
    clerk = _clerk(request)
    return _page(request, clerk.data, "counter/batch.html", actor=clerk.actor)


def _batch_error(request: Request, exc: DomainError, kwargs: dict[str, Any]) -> Response:
    form = {
        k: kwargs.get(k, "")
        for k in ("employer_uscc", "letter_ref", "handler_certno", "handler_name")
    }
    try:
        clerk: Clerk | None = _clerk(request)
    except (NotLoggedIn, DomainError):
        clerk = None
    return _page(
        request,
        clerk.data if clerk else SESSION.load(request),
        "counter/batch.html",
        exc.status,
        actor=clerk.actor if clerk else None,
        form=form,
        error=error_text(request, exc),
    )


@router.post("/batch")
@_counter_page(_batch_error)
async def batch_upload(
    request: Request,
    employer_uscc: str = Form(""),
    letter_ref: str = Form(""),
    handler_certno: str = Form(""),
    handler_name: str = Form(""),
    csrf: str = Form(""),
    materials: list[str] = Form([]),
    file: UploadFile = File(...),
) -> Response:
    limit = services_of(request).settings.upload_max_bytes
    content = await file.read(limit + 1)
    clerk = _clerk(request, csrf=csrf)
    if len(content) > limit:
        raise invalid("file", "文件过大", "the file is too large", "size")
    res = batches.upload_batch(
        _uow(request),
        actor=clerk.actor,
        channel=Channel.COUNTER,
        employer_uscc=employer_uscc,
        letter_ref=letter_ref,
        handler_certno=handler_certno,
        handler_name=handler_name,
        materials=materials,
        filename=file.filename or "upload.csv",
        content=content,
    )
    return _page(
        request,
        clerk.data,
        "counter/batch.html",
        actor=clerk.actor,
        form={
            "employer_uscc": employer_uscc,
            "letter_ref": letter_ref,
            "handler_certno": handler_certno,
            "handler_name": handler_name,
        },
        batch=res.batch,
        rows=res.batch.results,
    )


# ---------------------------------------------------------------- self-service terminals


def _terminals_page(request: Request, clerk: Clerk, status: int = 200, **context: Any) -> Response:
    """The terminals in the staff member's area, and the forms that manage them."""
    try:
        # TODO(merge): terminals.list_terminals is a use case on branch web
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


def _terminals_error(request: Request, exc: DomainError, kwargs: dict[str, Any]) -> Response:
    try:
        clerk = _clerk(request)
    except (NotLoggedIn, DomainError):
        return _page(
            request,
            SESSION.load(request),
            "counter/terminals.html",
            exc.status,
            terminals=[],
            error=error_text(request, exc),
        )
    form = {k: kwargs[k] for k in ("code", "location", "division_code") if k in kwargs}
    return _terminals_page(
        request, clerk, exc.status, form=form or None, error=error_text(request, exc)
    )


@router.get("/terminals")
@_counter_page(_terminals_error)
def terminals(request: Request) -> Response:
    return _terminals_page(request, _clerk(request))


@router.post("/terminals")
@_counter_page(_terminals_error)
def register_terminal(
    request: Request,
    code: str = Form(""),
    location: str = Form(""),
    division_code: str = Form(""),
    csrf: str = Form(""),
) -> Response:
    """Register a terminal; its first activation code is shown once."""
    clerk = _clerk(request, csrf=csrf)
    issued = kiosk_service.register_terminal(
        _uow(request),
        actor=clerk.actor,
        channel=Channel.COUNTER,
        code=code,
        location=location,
        division_code=division_code,
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
@_counter_page(_terminals_error)
def terminal_action(request: Request, code: str, action: str, csrf: str = Form("")) -> Response:
    """A new activation code for a terminal (shown once), or its deactivation."""
    clerk = _clerk(request, csrf=csrf)
    do = TERMINAL_ACTIONS.get(action)
    if do is None:
        return _terminals_page(request, clerk, 404)
    return do(request, clerk, code)
