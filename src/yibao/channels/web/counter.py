"""The staff counter console under /counter/: find a person in the clerk's
area, record the document checked, then show and do the visit's business."""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import RedirectResponse, Response

from yibao.channels.web.common import (
    CSRF_REFUSED,
    WebSession,
    error_text,
    render,
    services_of,
)
from yibao.domain import ledger as codes
from yibao.domain.actors import Actor, Channel
from yibao.domain.cards import CardKind, Path
from yibao.domain.errors import DomainError, invalid
from yibao.services.access import person_login as portal_service
from yibao.services.access import staff as access_service
from yibao.services.access import terminals as kiosk_service
from yibao.services.cards import batches
from yibao.services.cards import cards as card_service
from yibao.services.contributions import contributions
from yibao.services.inquiry import records
from yibao.services.ledger import ledger
from yibao.services.registry import registry
from yibao.store.models import StaffCredential
from yibao.store.uow import UnitOfWork

router = APIRouter()
SESSION = WebSession("yb_counter", "/counter", 8 * 3600)

# The documents a clerk may check before showing a person's data.
DOCUMENTS = ("id_card", "household_register", "social_security_card", "passport", "delegation")


def _go(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


class NotLoggedIn(Exception):
    pass


def _staff(
    request: Request, work: UnitOfWork, *, csrf: str | None = None
) -> tuple[Actor, StaffCredential, dict[str, Any]]:
    """The clerk behind the session cookie; for a form, also its CSRF token."""
    data = SESSION.load(request)
    if "token" not in data:
        raise NotLoggedIn
    try:
        user, cred = access_service.authenticate(work, token=str(data["token"]))
    except DomainError:
        raise NotLoggedIn from None
    if csrf is not None:
        access_service.check_csrf(cred, csrf)
    return access_service.actor_of(user), cred, data


def _page(
    request: Request, data: dict[str, Any], template: str, status: int = 200, **context: Any
) -> Response:
    data.setdefault("csrf", secrets.token_urlsafe(24))
    return render(request, template, status, csrf=data["csrf"], **context)


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
        with svc.uow() as work:
            done = access_service.login(
                work,
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
    with services_of(request).uow() as work:
        try:
            _, cred, _ = _staff(request, work, csrf=csrf)
        except (NotLoggedIn, DomainError):
            return response
        access_service.revoke(work, cred=cred)
        work.commit()
    SESSION.clear(response)
    return response


# ---------------------------------------------------------------- finding a person


@router.get("/")
def start(request: Request) -> Response:
    with services_of(request).uow() as work:
        try:
            actor, _, data = _staff(request, work)
        except NotLoggedIn:
            return _go("/counter/login")
        return _page(request, data, "counter/search.html", actor=actor, documents=DOCUMENTS)


@router.get("/search")
def search(request: Request, certno: str = "", card_no: str = "", name: str = "") -> Response:
    with services_of(request).uow() as work:
        try:
            actor, _, data = _staff(request, work)
        except NotLoggedIn:
            return _go("/counter/login")
        template = (
            "counter/_results.html" if request.headers.get("hx-request") else "counter/search.html"
        )
        try:
            persons = registry.search_persons(
                work,
                actor=actor,
                channel=Channel.COUNTER,
                query=registry.PersonQuery(
                    certno=certno or None, card_no=card_no or None, name=name or None
                ),
            )
            work.commit()
        except DomainError as exc:
            return _page(
                request,
                data,
                template,
                exc.status,
                actor=actor,
                documents=DOCUMENTS,
                error=error_text(request, exc),
                q={"certno": certno, "card_no": card_no, "name": name},
            )
        return _page(
            request,
            data,
            template,
            actor=actor,
            persons=persons,
            searched=True,
            documents=DOCUMENTS,
            q={"certno": certno, "card_no": card_no, "name": name},
        )


@router.post("/visit")
def visit(
    request: Request, account_no: str = Form(""), document: str = Form(""), csrf: str = Form("")
) -> Response:
    """Record which document was checked; only then is the person shown."""
    with services_of(request).uow() as work:
        try:
            actor, _, data = _staff(request, work, csrf=csrf)
            if document not in DOCUMENTS:
                raise invalid(
                    "document",
                    "请选择已核验的证件",
                    "choose the document you checked",
                    "required",
                )
            person = registry.get_person(
                work,
                actor=actor,
                channel=Channel.COUNTER,
                account_no=account_no,
                audit_action="counter.document_checked",
            )
            work.audit(
                actor.record(
                    channel=Channel.COUNTER,
                    action="counter.visit",
                    person_id=person.id,
                    subject=person.account_no,
                    detail={"document": document},
                )
            )
            work.commit()
        except NotLoggedIn:
            return _go("/counter/login")
        except DomainError as exc:
            return _page(
                request,
                SESSION.load(request),
                "counter/search.html",
                exc.status,
                documents=DOCUMENTS,
                error=error_text(request, exc),
            )
    response = _go(f"/counter/person/{account_no}")
    data["visit"] = {"account_no": account_no, "document": document}
    SESSION.save(request, response, data)
    return response


def _person_page(
    request: Request,
    work: UnitOfWork,
    actor: Actor,
    data: dict[str, Any],
    account_no: str,
    status: int = 200,
    **context: Any,
) -> Response:
    visit = data.get("visit") or {}
    if visit.get("account_no") != account_no:
        return _page(
            request,
            data,
            "counter/search.html",
            403,
            actor=actor,
            documents=DOCUMENTS,
            error=error_text(
                request,
                DomainError(
                    code="counter.document_required",
                    zh="请先核验并登记证件",
                    en="check and record the person's document first",
                ),
            ),
        )
    person = registry.get_person(work, actor=actor, channel=Channel.COUNTER, account_no=account_no)
    balance = ledger.individual_balance(work.session, person.id)
    lines = ledger.history(work.session, code=codes.individual(person.id), limit=10)
    payments = contributions.payment_records(work.session, person.id)[:12]
    person_cards = card_service.cards_of(work, person)
    work.commit()
    return _page(
        request,
        data,
        "counter/person.html",
        status,
        actor=actor,
        person=person,
        document=visit.get("document"),
        balance=balance,
        lines=lines,
        payments=payments,
        cards=person_cards,
        current=card_service.current_card(work, person),
        cause=records.cause,
        month_text=contributions.month_text,
        materials=card_service.MATERIALS,
        paths=[p.value for p in Path if p is not Path.EMPLOYER],
        **context,
    )


@router.get("/person/{account_no}")
def person(request: Request, account_no: str) -> Response:
    with services_of(request).uow() as work:
        try:
            actor, _, data = _staff(request, work)
            return _person_page(request, work, actor, data, account_no)
        except NotLoggedIn:
            return _go("/counter/login")
        except DomainError as exc:
            return _page(
                request,
                SESSION.load(request),
                "counter/search.html",
                exc.status,
                documents=DOCUMENTS,
                error=error_text(request, exc),
            )


ACTIONS = ("apply", "collect", "lost", "reissue", "pin", "activation", "cancel")


@router.post("/person/{account_no}/{action}")
async def act(request: Request, account_no: str, action: str) -> Response:
    form = await request.form()

    def val(name: str) -> str:
        v = form.get(name)
        return v.strip() if isinstance(v, str) else ""

    materials = [str(m) for m in form.getlist("materials")]
    with services_of(request).uow() as work:
        try:
            actor, _, data = _staff(request, work, csrf=val("csrf"))
        except NotLoggedIn:
            return _go("/counter/login")
        except DomainError as exc:
            return _page(
                request,
                SESSION.load(request),
                "counter/search.html",
                exc.status,
                documents=DOCUMENTS,
                error=error_text(request, exc),
            )
        if (data.get("visit") or {}).get("account_no") != account_no or action not in ACTIONS:
            return _person_page(request, work, actor, data, account_no)
        ch = Channel.COUNTER
        result: dict[str, Any] = {}
        try:
            person = registry.get_person(work, actor=actor, channel=ch, account_no=account_no)
            card_no = val("card_no")
            if action == "apply":
                res = card_service.apply_for_card(
                    work,
                    actor=actor,
                    channel=ch,
                    path=Path(val("path") or "county_center"),
                    certno=person.certno,
                    materials=materials,
                    kind=CardKind(val("kind") or "social_security"),
                    pin=val("pin") or None,
                    delegate_certno=val("delegate_certno") or None,
                    delegate_name=val("delegate_name") or None,
                )
                result = {
                    "done": "apply",
                    "card_no": res.card.card_no,
                    "pin": res.pin,
                    "app_no": res.application.app_no if res.application else "",
                }
            elif action == "collect":
                res = card_service.collect_card(
                    work,
                    actor=actor,
                    channel=ch,
                    card_no=card_no,
                    collector_certno=val("collector_certno") or person.certno,
                    pin=val("pin") or None,
                )
                result = {"done": "collect", "card_no": res.card.card_no, "pin": res.pin}
            elif action == "lost":
                card_service.report_lost(
                    work, actor=actor, channel=ch, card_no=card_no, reason=val("reason")
                )
                result = {"done": "lost", "card_no": card_no}
            elif action == "reissue":
                res = card_service.reissue(
                    work,
                    actor=actor,
                    channel=ch,
                    card_no=card_no,
                    materials=materials,
                    reason=val("reason"),
                    pin=val("pin") or None,
                )
                result = {"done": "reissue", "card_no": res.card.card_no, "pin": res.pin}
            elif action == "pin":
                res = card_service.reset_pin(
                    work, actor=actor, channel=ch, card_no=card_no, pin=val("pin") or None
                )
                result = {"done": "pin", "card_no": card_no, "pin": res.pin}
            elif action == "activation":
                code, expires = portal_service.issue_activation_code(
                    work, actor=actor, channel=ch, person=person
                )
                result = {"done": "activation", "code": code, "expires": expires}
            else:
                card_service.cancel_card(
                    work, actor=actor, channel=ch, card_no=card_no, reason=val("reason")
                )
                result = {"done": "cancel", "card_no": card_no}
            work.commit()
        except DomainError as exc:
            work.rollback()
            return _person_page(
                request, work, actor, data, account_no, exc.status, error=error_text(request, exc)
            )
        return _person_page(request, work, actor, data, account_no, result=result)


# ---------------------------------------------------------------- lists and batches


@router.get("/applications")
def applications(request: Request, view: str = "due") -> Response:
    with services_of(request).uow() as work:
        try:
            actor, _, data = _staff(request, work)
        except NotLoggedIn:
            return _go("/counter/login")
        try:
            rows = card_service.list_applications(
                work, actor=actor, channel=Channel.COUNTER, view=view
            )
            work.commit()
        except DomainError as exc:
            return _page(
                request,
                data,
                "counter/applications.html",
                exc.status,
                actor=actor,
                rows=[],
                view=view,
                error=error_text(request, exc),
            )
        return _page(request, data, "counter/applications.html", actor=actor, rows=rows, view=view)


@router.get("/batch")
def batch_form(request: Request) -> Response:
    with services_of(request).uow() as work:
        try:
            actor, _, data = _staff(request, work)
        except NotLoggedIn:
            return _go("/counter/login")
        return _page(request, data, "counter/batch.html", actor=actor)


@router.post("/batch")
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
    content = await file.read(services_of(request).settings.upload_max_bytes + 1)
    with services_of(request).uow() as work:
        try:
            actor, _, data = _staff(request, work, csrf=csrf)
        except NotLoggedIn:
            return _go("/counter/login")
        except DomainError as exc:
            return _page(
                request,
                SESSION.load(request),
                "counter/batch.html",
                exc.status,
                error=error_text(request, exc),
            )
        form = {
            "employer_uscc": employer_uscc,
            "letter_ref": letter_ref,
            "handler_certno": handler_certno,
            "handler_name": handler_name,
        }
        try:
            if len(content) > services_of(request).settings.upload_max_bytes:
                raise invalid("file", "文件过大", "the file is too large", "size")
            res = batches.upload_batch(
                work,
                actor=actor,
                channel=Channel.COUNTER,
                employer_uscc=employer_uscc,
                letter_ref=letter_ref,
                handler_certno=handler_certno,
                handler_name=handler_name,
                materials=materials,
                filename=file.filename or "upload.csv",
                content=content,
            )
            work.commit()
        except DomainError as exc:
            work.rollback()
            return _page(
                request,
                data,
                "counter/batch.html",
                exc.status,
                actor=actor,
                form=form,
                error=error_text(request, exc),
            )
        return _page(
            request,
            data,
            "counter/batch.html",
            actor=actor,
            form=form,
            batch=res.batch,
            rows=res.batch.results,
        )


# ---------------------------------------------------------------- self-service terminals


def _terminals_page(
    request: Request,
    work: UnitOfWork,
    actor: Actor,
    data: dict[str, Any],
    status: int = 200,
    **context: Any,
) -> Response:
    """The terminals in the staff member's area, and the forms that manage them."""
    try:
        terminals = kiosk_service.list_terminals(work, actor=actor)
    except DomainError as exc:  # a role that does not manage terminals
        return _page(
            request,
            data,
            "counter/terminals.html",
            exc.status,
            actor=actor,
            terminals=[],
            error=error_text(request, exc),
        )
    now = work.clock.now()
    return _page(
        request,
        data,
        "counter/terminals.html",
        status,
        actor=actor,
        terminals=[(t, kiosk_service.terminal_state(t, now)) for t in terminals],
        divisions=[d for d in registry.list_divisions(work) if actor.sees(d.code)],
        can_manage=True,
        **context,
    )


@router.get("/terminals")
def terminals(request: Request) -> Response:
    with services_of(request).uow() as work:
        try:
            actor, _, data = _staff(request, work)
        except NotLoggedIn:
            return _go("/counter/login")
        return _terminals_page(request, work, actor, data)


@router.post("/terminals")
def register_terminal(
    request: Request,
    code: str = Form(""),
    location: str = Form(""),
    division_code: str = Form(""),
    csrf: str = Form(""),
) -> Response:
    """Register a terminal; its first activation code is shown once."""
    form = {"code": code, "location": location, "division_code": division_code}
    with services_of(request).uow() as work:
        try:
            actor, _, data = _staff(request, work, csrf=csrf)
        except NotLoggedIn:
            return _go("/counter/login")
        except DomainError as exc:
            return _page(
                request,
                SESSION.load(request),
                "counter/terminals.html",
                exc.status,
                terminals=[],
                error=error_text(request, exc),
            )
        try:
            issued = kiosk_service.register_terminal(
                work,
                actor=actor,
                channel=Channel.COUNTER,
                code=code,
                location=location,
                division_code=division_code,
            )
            work.commit()
        except DomainError as exc:
            work.rollback()
            return _terminals_page(
                request, work, actor, data, exc.status, form=form, error=error_text(request, exc)
            )
        return _terminals_page(request, work, actor, data, issued=issued)


TERMINAL_ACTIONS = ("issue", "deactivate")


@router.post("/terminals/{code}/{action}")
def terminal_action(request: Request, code: str, action: str, csrf: str = Form("")) -> Response:
    """A new activation code for a terminal (shown once), or its deactivation."""
    with services_of(request).uow() as work:
        try:
            actor, _, data = _staff(request, work, csrf=csrf)
        except NotLoggedIn:
            return _go("/counter/login")
        except DomainError as exc:
            return _page(
                request,
                SESSION.load(request),
                "counter/terminals.html",
                exc.status,
                terminals=[],
                error=error_text(request, exc),
            )
        if action not in TERMINAL_ACTIONS:
            return _terminals_page(request, work, actor, data, 404)
        try:
            if action == "issue":
                issued = kiosk_service.issue_code(
                    work, actor=actor, channel=Channel.COUNTER, code=code
                )
                work.commit()
                return _terminals_page(request, work, actor, data, issued=issued)
            terminal = kiosk_service.deactivate_terminal(
                work, actor=actor, channel=Channel.COUNTER, code=code
            )
            work.commit()
        except DomainError as exc:
            work.rollback()
            return _terminals_page(
                request, work, actor, data, exc.status, error=error_text(request, exc)
            )
        return _terminals_page(request, work, actor, data, deactivated=terminal.code)
