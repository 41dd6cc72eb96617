"""Employer batch applications (seed 000, part two, item 4): the employer's
handler brings a letter of introduction and their own ID to the county
center and uploads the staff list in one go; every good row is accepted,
every bad row is named with its row number and reason; the cards go to the
employer as one batch and the employer's handing out is recorded."""

from __future__ import annotations

import csv
import io
import secrets
import zipfile
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from yibao.domain import divisions as dv
from yibao.domain.access import Perm
from yibao.domain.actors import Actor
from yibao.domain.cards import CardKind, CardStatus, Path
from yibao.domain.errors import DomainError, conflict, invalid, not_found
from yibao.domain.ids import parse_resident_id
from yibao.services.cards import cards as card_service
from yibao.services.contributions import contributions, roll
from yibao.services.registry.registry import get_employer, in_scope
from yibao.services.tx import use_case
from yibao.store.models import Card, CardApplication, Employer, EmployerBatch, Person
from yibao.store.uow import UnitOfWork

MAX_ROWS = 10_000
HEADERS = {
    "certno": {"certno", "身份证号", "身份证号码", "公民身份号码", "证件号码", "id number"},
    "name": {"name", "姓名"},
    "phone": {"phone", "电话", "手机", "手机号", "联系电话"},
}


@dataclass
class Row:
    number: int  # as the spreadsheet shows it: the header is row 1
    values: dict[str, Any]


def _header_map(
    cells: list[Any], headers: dict[str, set[str]], required: tuple[str, ...]
) -> dict[str, int]:
    found: dict[str, int] = {}
    for index, cell in enumerate(cells):
        label = str(cell or "").strip().lower()
        for key, names in headers.items():
            if label in names and key not in found:
                found[key] = index
    missing = [k for k in required if k not in found]
    if missing and headers is HEADERS:
        raise invalid(
            "file",
            "名单第一行应为表头，须包含“身份证号码”和“姓名”列",
            "the first row must be a header with the columns certno (身份证号码) and name (姓名)",
            "header",
        )
    if missing:
        labels = "、".join(missing)
        raise invalid(
            missing[0],
            f"第1行（表头）缺少列：{labels}",
            f"row 1 (the header) lacks the column {', '.join(missing)}",
            "header",
        )
    return found


def read_rows(filename: str, content: bytes) -> list[Row]:
    """Read a CSV (UTF-8 or GB18030, as Excel in China saves it) or an XLSX list."""
    return read_table(filename, content, HEADERS, ("certno", "name"))


def read_table(
    filename: str, content: bytes, headers: dict[str, set[str]], required: tuple[str, ...]
) -> list[Row]:
    """The rows of a CSV or XLSX file whose first row names the columns
    (``headers``: each key's accepted labels, in lower case); a required
    column missing refuses the file, naming it."""
    if not content:
        raise invalid("file", "上传的文件为空", "the uploaded file is empty", "empty")
    lower = filename.lower()
    raw_rows: list[list[Any]]
    if lower.endswith(".xlsx") or content[:2] == b"PK":
        raw_rows = _xlsx_rows(content)
    elif lower.endswith(".csv") or lower.endswith(".txt"):
        raw_rows = _csv_rows(content)
    else:
        raise invalid(
            "file", "名单应为CSV或XLSX文件", "the list must be a CSV or XLSX file", "type"
        )
    if not raw_rows:
        raise invalid("file", "名单没有内容", "the list has no rows", "empty")
    header = _header_map(raw_rows[0], headers, required)
    rows: list[Row] = []
    for offset, cells in enumerate(raw_rows[1:], start=2):
        if not any(str(c or "").strip() for c in cells):
            continue  # blank lines are not rows
        values = {key: (cells[i] if i < len(cells) else None) for key, i in header.items()}
        rows.append(Row(offset, values))
    if not rows:
        raise invalid("file", "名单中没有数据行", "the list has a header but no rows", "empty")
    if len(rows) > MAX_ROWS:
        raise invalid(
            "file", f"一次最多上传{MAX_ROWS}行", f"at most {MAX_ROWS} rows per upload", "too_many"
        )
    return rows


def _csv_rows(content: bytes) -> list[list[Any]]:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = content.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:  # pragma: no cover - gb18030 decodes nearly anything
        raise invalid(
            "file", "无法识别文件编码", "the file is neither UTF-8 nor GB18030 text", "encoding"
        )
    return [list(r) for r in csv.reader(io.StringIO(text))]


def _xlsx_rows(content: bytes) -> list[list[Any]]:
    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise invalid(
            "file", "无法读取XLSX文件", "the XLSX file cannot be read", "unreadable"
        ) from exc
    try:
        sheet = book.worksheets[0]
        return [list(r) for r in sheet.iter_rows(values_only=True)]
    finally:
        book.close()


@dataclass
class BatchResult:
    batch: EmployerBatch
    accepted: list[dict[str, Any]]
    rejected: list[dict[str, Any]]


@use_case
def upload_batch(
    uow: UnitOfWork,
    *,
    actor: Actor,
    channel: str,
    employer_uscc: str,
    letter_ref: str,
    handler_certno: str,
    handler_name: str,
    materials: list[str],
    filename: str,
    content: bytes,
    kind: CardKind = CardKind.SOCIAL_SECURITY,
) -> BatchResult:
    """The employer's handler at the county center, with a letter of
    introduction and their own ID (seed 000, part two, item 4)."""
    actor.require(Perm.CARD_APPLY_CENTER)
    office, office_division = card_service.office_of(uow, actor)
    if office is not card_service.Office.COUNTY_CENTER:
        raise invalid(
            "path", "单位集中办卡在县医保中心受理", "employer batches are taken at a county center"
        )
    recorded = card_service.check_materials(Path.EMPLOYER, materials)
    letter_ref = (letter_ref or "").strip()
    if not letter_ref:
        raise invalid(
            "letter_ref",
            "请填写单位介绍信编号",
            "the letter of introduction's reference is required",
            "required",
        )
    employer = get_employer.step(uow, actor=actor, uscc=employer_uscc)
    return _upload(
        uow,
        actor=actor,
        channel=channel,
        employer=employer,
        office_code=office_division.code,
        letter_ref=letter_ref,
        handler_certno=handler_certno,
        handler_name=handler_name,
        materials=recorded,
        filename=filename,
        content=content,
        kind=kind,
    )


@use_case
def upload_own_batch(
    uow: UnitOfWork,
    *,
    actor: Actor,
    channel: str,
    handler_certno: str,
    handler_name: str,
    filename: str,
    content: bytes,
    kind: CardKind = CardKind.SOCIAL_SECURITY,
) -> BatchResult:
    """The employer signed in on its own channel uploads the list (issue 15):
    it needs no letter of introduction, having proven who it is; the cards
    are made at the county center of its area and handed to the handler
    named here, as a batch brought in person is."""
    employer = contributions.employer_for(uow, actor=actor, uscc=actor.id, write=True)
    county = dv.county_of(employer.division_code)
    if county is None:
        raise invalid(
            "employer",
            "贵单位不属于某一县（区），请持单位介绍信到医保中心办理",
            "the employer belongs to no county; bring a letter of introduction to a center",
            "no_county",
        )
    return _upload(
        uow,
        actor=actor,
        channel=channel,
        employer=employer,
        office_code=county,
        letter_ref="",
        handler_certno=handler_certno,
        handler_name=handler_name,
        materials=[],
        filename=filename,
        content=content,
        kind=kind,
    )


def _upload(
    uow: UnitOfWork,
    *,
    actor: Actor,
    channel: str,
    employer: Employer,
    office_code: str,
    letter_ref: str,
    handler_certno: str,
    handler_name: str,
    materials: list[Any],
    filename: str,
    content: bytes,
    kind: CardKind,
) -> BatchResult:
    handler = parse_resident_id(handler_certno, field="handler_certno", today=uow.clock.today())
    handler_name = (handler_name or "").strip()
    if not handler_name:
        raise invalid(
            "handler_name", "请填写经办人姓名", "the handler's name is required", "required"
        )
    rows = read_rows(filename, content)

    batch = EmployerBatch(
        batch_no=f"B{uow.clock.today():%Y%m%d}{secrets.token_hex(5).upper()}",
        employer=employer,
        division_code=office_code,
        letter_ref=letter_ref,
        handler_certno=handler.number,
        handler_name=handler_name,
        filename=filename[:200],
        uploaded_at=uow.clock.now(),
        uploaded_by=actor.id,
        total_rows=len(rows),
        accepted_rows=0,
        rejected_rows=0,
        materials=materials,
        status="in_production",
    )
    uow.session.add(batch)
    uow.session.flush()

    accepted: list[dict[str, Any]] = []
    rejected: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for row in rows:
        outcome = _one_row(
            uow,
            actor=actor,
            channel=channel,
            batch=batch,
            row=row,
            seen=seen,
            kind=kind,
            office_code=office_code,
        )
        (accepted if outcome["status"] == "accepted" else rejected).append(outcome)
    batch.accepted_rows = len(accepted)
    batch.rejected_rows = len(rejected)
    batch.results = accepted + rejected
    batch.results.sort(key=lambda r: r["row"])
    if not accepted:
        batch.status = "rejected"
    uow.audit(
        actor.record(
            channel=channel,
            action="employer_batch.upload",
            subject=batch.batch_no,
            detail={
                "employer": employer.uscc,
                "accepted": len(accepted),
                "rejected": len(rejected),
            },
        )
    )
    return BatchResult(batch, accepted, rejected)


def _reject(row: Row, field: str, zh: str, en: str, certno: str = "") -> dict[str, Any]:
    return {
        "row": row.number,
        "status": "rejected",
        "certno": certno,
        "field": field,
        "reason": f"{zh} / {en}",
        # each language on its own, for a page in one language
        "zh": zh,
        "en": en,
    }


def _one_row(
    uow: UnitOfWork,
    *,
    actor: Actor,
    channel: str,
    batch: EmployerBatch,
    row: Row,
    seen: dict[str, int],
    kind: CardKind,
    office_code: str,
) -> dict[str, Any]:
    raw_certno = row.values.get("certno")
    if isinstance(raw_certno, (int, float)):
        return _reject(
            row,
            "certno",
            "身份证号码被Excel存为数字，已丢失位数，请将该列设为文本",
            "the ID number was stored by Excel as a number and lost digits; "
            "format the column as text",
        )
    certno_text = str(raw_certno or "").strip()
    try:
        rid = parse_resident_id(certno_text, today=uow.clock.today())
    except DomainError as exc:
        return _reject(row, "certno", exc.zh, exc.en, certno_text)
    name = str(row.values.get("name") or "").strip()
    if not name:
        return _reject(row, "name", "姓名不能为空", "the name is empty", rid.number)
    if rid.number in seen:
        # only an accepted row: a row refused for this person may be
        # followed by its correction in the same list
        return _reject(
            row,
            "certno",
            f"与第{seen[rid.number]}行重复",
            f"the same person as row {seen[rid.number]}",
            rid.number,
        )
    if actor.is_employer:
        # the employer's own list reaches only its roll, wherever its
        # employees live; whether a stranger is registered is not its to learn
        person = uow.session.execute(
            select(Person).where(Person.certno == rid.number)
        ).scalar_one_or_none()
    else:
        person = uow.session.execute(
            select(Person).where(Person.certno == rid.number, in_scope(Person.division_code, actor))
        ).scalar_one_or_none()
        if person is None:
            return _reject(
                row,
                "certno",
                "本区域内没有该身份证号码的参保人员",
                "no insured person with this ID number in your area",
                rid.number,
            )
    # The cards go to the employer: only for its own employees, never a
    # stranger's card into its hands
    if person is None or roll.on_roll(uow, employer=batch.employer, person_id=person.id) is None:
        return _reject(
            row,
            "certno",
            "该人员不在本单位参保人员名单中",
            "the person is not on this employer's roll",
            rid.number,
        )
    if person.name != name:
        return _reject(
            row, "name", "姓名与登记信息不一致", "the name does not match the registry", rid.number
        )
    try:
        with uow.session.begin_nested():
            card_service.require_applicable(uow, person)
            application = CardApplication(
                app_no=card_service.new_app_no(Path.EMPLOYER, uow.clock.today()),
                path=Path.EMPLOYER.value,
                person=person,
                division_code=office_code,
                kind=kind.value,
                submitted_at=uow.clock.now(),
                due_date=None,
                materials=batch.materials,
                employer_batch_id=batch.id,
                created_by=actor.id,
            )
            uow.session.add(application)
            uow.session.flush()
            card = card_service.create_card(
                uow, person=person, kind=kind, application=application, actor=actor, channel=channel
            )
    except DomainError as exc:
        return _reject(row, "certno", exc.zh, exc.en, rid.number)
    seen[rid.number] = row.number
    return {
        "row": row.number,
        "status": "accepted",
        "certno": rid.number,
        "name": name,
        "app_no": application.app_no,
        "card_no": card.card_no,
    }


@dataclass(frozen=True)
class BatchView:
    batch: EmployerBatch
    cards: list[Card]


@use_case
def read_batch(uow: UnitOfWork, *, actor: Actor, channel: str, batch_no: str) -> BatchView:
    """A batch with its row results (the employees' ID numbers) and its
    cards, audited as a read."""
    batch = get_batch(uow, actor=actor, batch_no=batch_no)
    uow.audit(
        actor.record(
            channel=channel,
            action="employer_batch.read",
            subject=batch.batch_no,
            detail={"rows": batch.total_rows},
        )
    )
    return BatchView(batch, batch_cards(uow, batch))


def get_batch(uow: UnitOfWork, *, actor: Actor, batch_no: str) -> EmployerBatch:
    actor.require(Perm.PERSON_READ)
    batch = uow.session.execute(
        select(EmployerBatch).where(
            EmployerBatch.batch_no == batch_no, in_scope(EmployerBatch.division_code, actor)
        )
    ).scalar_one_or_none()
    if batch is None:
        raise not_found("单位批次", "employer batch", "batch.not_found")
    return batch


def batch_cards(uow: UnitOfWork, batch: EmployerBatch) -> list[Card]:
    return list(
        uow.session.execute(
            select(Card)
            .join(CardApplication, Card.application_id == CardApplication.id)
            .where(CardApplication.employer_batch_id == batch.id)
            .order_by(Card.id)
        ).scalars()
    )


@use_case
def deliver_batch(uow: UnitOfWork, *, actor: Actor, channel: str, batch_no: str) -> EmployerBatch:
    """The batch's cards are produced and handed to the employer's handler as one lot."""
    actor.require(Perm.CARD_MANAGE)
    batch = get_batch(uow, actor=actor, batch_no=batch_no)
    if batch.status != "in_production":
        raise conflict(
            "batch.not_in_production", "该批次不在制卡中", f"the batch is {batch.status}"
        )
    count = 0
    for card in batch_cards(uow, batch):
        if card.status in (CardStatus.APPLIED.value, CardStatus.IN_PRODUCTION.value):
            card_service.move_to_ready(uow, card, actor=actor, channel=channel, location="employer")
            count += 1
    batch.status = "delivered"
    batch.delivered_at = uow.clock.now()
    uow.audit(
        actor.record(
            channel=channel,
            action="employer_batch.deliver",
            subject=batch.batch_no,
            detail={"cards": count, "handler": batch.handler_name},
        )
    )
    return batch


@use_case
def record_handout(
    uow: UnitOfWork, *, actor: Actor, channel: str, batch_no: str, card_no: str
) -> card_service.CardResult:
    """The employer reports that it handed this card to the employee."""
    actor.require(Perm.CARD_MANAGE)
    batch = get_batch(uow, actor=actor, batch_no=batch_no)
    cards = {c.card_no: c for c in batch_cards(uow, batch)}
    card = cards.get(card_no)
    if card is None:
        raise not_found("该批次中的卡片", "card in this batch", "card.not_found")
    card_service.check_collectable(card)
    if card.location != "employer":
        raise conflict(
            "card.not_with_employer",
            "该卡不在用人单位待发放",
            f"the card is not waiting at the employer (it is {card.status})",
        )
    initial = card_service.hand_over(
        uow,
        card,
        actor=actor,
        channel=channel,
        pin=None,
        handed_to=f"the employee, by employer {batch.employer.uscc} (handler {batch.handler_name})",
        event="handed_out_by_employer",
    )
    if all(c.status != CardStatus.READY.value for c in cards.values()):
        batch.status = "completed"
    return card_service.CardResult(card=card, pin=initial)


@use_case
def own_batches(uow: UnitOfWork, *, actor: Actor, channel: str, limit: int = 20) -> list[BatchView]:
    """The employer's own batches, newest first, with their row results and
    cards: whichever way they were brought in. The read is audited."""
    employer = contributions.employer_for(uow, actor=actor, uscc=actor.id, write=False)
    found = list(
        uow.session.execute(
            select(EmployerBatch)
            .where(EmployerBatch.employer_id == employer.id)
            .order_by(EmployerBatch.uploaded_at.desc(), EmployerBatch.id.desc())
            .limit(limit)
        ).scalars()
    )
    uow.audit(
        actor.record(
            channel=channel,
            action="employer_batch.read",
            subject=employer.uscc,
            detail={"batches": [b.batch_no for b in found]},
        )
    )
    return [BatchView(b, batch_cards(uow, b)) for b in found]
