"""Card applications (the four paths), employer batches and the card lifecycle."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, UploadFile
from pydantic import Field

from yibao.channels.api import views
from yibao.channels.api.deps import Holder, Staff, Work
from yibao.channels.api.errors import answers
from yibao.channels.api.fields import (
    Body,
    CardNo,
    Certno,
    Code,
    Materials,
    Name,
    Note,
    Pin,
    Text,
    Uscc,
    Word,
)
from yibao.domain import values
from yibao.domain.actors import Channel
from yibao.domain.cards import CardKind, Path
from yibao.services.cards import batches as batch_service
from yibao.services.cards import cards as card_service

router = APIRouter(tags=["cards 社保卡/医保卡"])


class ApplicationIn(Body):
    path: Path = Field(
        description="county_center, service_point or delegate (employer: use /employer-batches)"
    )
    certno: Certno = Field(description="参保人身份证号码 the insured person's ID number")
    materials: Materials = Field(
        description="材料清单 materials checked, e.g. id_card, photo, household_register"
    )
    kind: CardKind = CardKind.SOCIAL_SECURITY
    pin: Pin | None = Field(
        default=None, description="6-digit PIN chosen by the holder (on-the-spot issue)"
    )
    delegate_certno: Certno | None = None
    delegate_name: Name | None = None
    card_no: CardNo | None = Field(
        default=None, description="number of the blank card from stock (on-the-spot)"
    )


class CollectIn(Body):
    collector_certno: Certno
    pin: Pin | None = None


class ReasonIn(Body):
    reason: Note = ""


class ReissueIn(Body):
    materials: Materials
    reason: Text
    pin: Pin | None = None


class PinIn(Body):
    pin: Pin | None = None


class HandoutIn(Body):
    card_no: CardNo


def _card_result(result: card_service.CardResult, work: Work) -> dict[str, Any]:
    out: dict[str, Any] = {"card": views.card(result.card)}
    if result.application is not None:
        state = card_service.application_state(result.application, result.card, work.clock.today())
        out["application"] = views.application(
            card_service.ApplicationView(result.application, result.card, state)
        )
    if result.pin is not None:
        out["initial_pin"] = result.pin
    return out


@router.post("/card-applications", status_code=201, responses=answers(404, 409))
def apply(body: ApplicationIn, ctx: Staff, work: Work) -> dict[str, Any]:
    result = card_service.apply_for_card(
        work,
        actor=ctx.actor,
        channel=Channel.API,
        path=body.path,
        certno=body.certno,
        materials=body.materials,
        kind=body.kind,
        pin=body.pin,
        delegate_certno=body.delegate_certno,
        delegate_name=body.delegate_name,
        card_no=body.card_no,
    )
    return _card_result(result, work)


@router.get("/card-applications")
def list_applications(ctx: Staff, work: Work, view: Word = "open") -> list[dict[str, Any]]:
    """Applications in your area: ``open``, ``due`` (still in time) or ``overdue``, or ``all``."""
    # the API's list first sends back cards left at a service point too long
    items = card_service.list_applications(
        work, actor=ctx.actor, channel=Channel.API, view=view, return_overdue=True
    )
    return [views.application(v) for v in items]


@router.get("/card-applications/{app_no}", responses=answers(404))
def get_application(app_no: Code, ctx: Staff, work: Work) -> dict[str, Any]:
    v = card_service.get_application(work, actor=ctx.actor, channel=Channel.API, app_no=app_no)
    return views.application(v)


@router.get("/cards/{card_no}", responses=answers(404))
def get_card(card_no: CardNo, ctx: Staff, work: Work) -> dict[str, Any]:
    card, events = card_service.get_card(
        work, actor=ctx.actor, channel=Channel.API, card_no=card_no
    )
    return {**views.card(card), "history": [views.card_event(e) for e in events]}


@router.post("/cards/{card_no}/production", responses=answers(404, 409))
def start_production(card_no: CardNo, ctx: Staff, work: Work) -> dict[str, Any]:
    card = card_service.start_production(
        work, actor=ctx.actor, channel=Channel.API, card_no=card_no
    )
    return views.card(card)


@router.post("/cards/{card_no}/ready", responses=answers(404, 409))
def mark_ready(card_no: CardNo, ctx: Staff, work: Work) -> dict[str, Any]:
    card = card_service.mark_ready(work, actor=ctx.actor, channel=Channel.API, card_no=card_no)
    return views.card(card)


# The card actions are done for a person, on that person's own card: the
# service refuses a card that is somebody else's (card.not_holder).
PERSON_CARD = "/persons/{account_no}/cards/{card_no}"


@router.post(PERSON_CARD + "/collect", responses=answers(404, 409))
def collect(
    card_no: CardNo, body: CollectIn, ctx: Staff, person_id: Holder, work: Work
) -> dict[str, Any]:
    result = card_service.collect_card(
        work,
        actor=ctx.actor,
        channel=Channel.API,
        person_id=person_id,
        card_no=card_no,
        collector_certno=body.collector_certno,
        pin=body.pin,
    )
    return _card_result(result, work)


# The moves that take only a reason: one route each, made from this table.
REASON_MOVES: dict[str, tuple[Any, str]] = {
    "report-lost": (card_service.report_lost, "Report the card lost (挂失): blocked at once."),
    "found": (card_service.report_found, "Undo a loss report (解挂): the card was found."),
    "freeze": (card_service.freeze, "Freeze the card (冻结)."),
    "unfreeze": (card_service.unfreeze, "Unfreeze the card (解冻)."),
    "cancel": (card_service.cancel_card, "Cancel the card (注销), returned to the office."),
}


def _reason_route(move: Any) -> Any:
    def route(
        card_no: CardNo, body: ReasonIn, ctx: Staff, person_id: Holder, work: Work
    ) -> dict[str, Any]:
        card = move(
            work,
            actor=ctx.actor,
            channel=Channel.API,
            person_id=person_id,
            card_no=card_no,
            reason=body.reason,
        )
        return views.card(card)

    return route


for _path, (_move, _summary) in REASON_MOVES.items():
    router.add_api_route(
        f"{PERSON_CARD}/{_path}",
        _reason_route(_move),
        methods=["POST"],
        summary=_summary,
        name=f"card_{_path.replace('-', '_')}",
        responses=answers(404, 409),
    )


@router.post(PERSON_CARD + "/reissue", status_code=201, responses=answers(404, 409))
def reissue(
    card_no: CardNo, body: ReissueIn, ctx: Staff, person_id: Holder, work: Work
) -> dict[str, Any]:
    result = card_service.reissue(
        work,
        actor=ctx.actor,
        channel=Channel.API,
        person_id=person_id,
        card_no=card_no,
        materials=body.materials,
        reason=body.reason,
        pin=body.pin,
    )
    return _card_result(result, work)


@router.post(PERSON_CARD + "/pin", responses=answers(404, 409))
def reset_pin(
    card_no: CardNo, body: PinIn, ctx: Staff, person_id: Holder, work: Work
) -> dict[str, Any]:
    result = card_service.reset_pin(
        work,
        actor=ctx.actor,
        channel=Channel.API,
        person_id=person_id,
        card_no=card_no,
        pin=body.pin,
    )
    return _card_result(result, work)


@router.post("/employer-batches", status_code=201, responses=answers(404, 409))
def upload_batch(
    ctx: Staff,
    work: Work,
    employer_uscc: Annotated[Uscc, Form()],
    letter_ref: Annotated[
        Text, Form(description="单位介绍信编号 letter of introduction reference")
    ],
    handler_certno: Annotated[Certno, Form()],
    handler_name: Annotated[Name, Form()],
    file: Annotated[UploadFile, File(description="CSV or XLSX: 身份证号码 certno, 姓名 name")],
    materials: Annotated[Materials, Form()],
    kind: Annotated[CardKind, Form()] = CardKind.SOCIAL_SECURITY,
) -> dict[str, Any]:
    """An employer's batch: good rows accepted, bad rows listed with row number and reason."""
    content = values.upload(file.file.read, most=work.settings.upload_max_bytes)
    result = batch_service.upload_batch(
        work,
        actor=ctx.actor,
        channel=Channel.API,
        employer_uscc=employer_uscc,
        letter_ref=letter_ref,
        handler_certno=handler_certno,
        handler_name=handler_name,
        materials=materials,
        filename=file.filename or "upload",
        content=content,
        kind=kind,
    )
    return views.batch(result.batch)


@router.get("/employer-batches/{batch_no}", responses=answers(404))
def get_batch(batch_no: Code, ctx: Staff, work: Work) -> dict[str, Any]:
    found = batch_service.read_batch(work, actor=ctx.actor, channel=Channel.API, batch_no=batch_no)
    return {**views.batch(found.batch), "cards": [views.card(c) for c in found.cards]}


@router.post("/employer-batches/{batch_no}/deliver", responses=answers(404, 409))
def deliver_batch(batch_no: Code, ctx: Staff, work: Work) -> dict[str, Any]:
    batch = batch_service.deliver_batch(
        work, actor=ctx.actor, channel=Channel.API, batch_no=batch_no
    )
    return views.batch(batch)


@router.post("/employer-batches/{batch_no}/handouts", responses=answers(404, 409))
def handout(batch_no: Code, body: HandoutIn, ctx: Staff, work: Work) -> dict[str, Any]:
    result = batch_service.record_handout(
        work, actor=ctx.actor, channel=Channel.API, batch_no=batch_no, card_no=body.card_no
    )
    return _card_result(result, work)
