"""What a FHIR client sends, read before anything else runs: the JSON body,
the resource through its ``fhir.resources.R4B`` model, then yibao's values
(a patient reference, amounts in fen, the claim's identifier). A bad value
is a 422 naming the element by its FHIRPath (``Claim.item[0].net.value``)."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

import orjson
from fhir.resources.R4B.claim import Claim
from fhir.resources.R4B.coverageeligibilityrequest import CoverageEligibilityRequest
from fhir.resources.R4B.resource import Resource
from pydantic import ValidationError

from yibao.clock import CHINA
from yibao.domain.errors import DomainError, FieldProblem, invalid
from yibao.services.fhir.fhir import IDENTIFIER_MAX, ClaimInput, ClaimLine

MAX_BODY = 1024 * 1024
ITEMS_MAX = 1000
YUAN_MAX = Decimal(10) ** 10
MED_TYPE = "urn:yibao:fhir:CodeSystem/med-type"
ACCOUNT_USED = "urn:yibao:fhir:StructureDefinition/account-used"
_PATIENT = re.compile(r"(?:Patient/)?([0-9]{1,18})")
# an identifier or a search value: printable, no control character
_TEXT = re.compile(r"[^\x00-\x1f\x7f]+")
# a catalogue code: visible ASCII
_CODE = re.compile(r"[!-~]{1,50}")
_ORG = re.compile(r"Organization/([A-Za-z0-9]{1,20})")

R = TypeVar("R", bound=Resource)


def too_large() -> DomainError:
    return DomainError(
        code="validation.too_large",
        zh=f"请求体超过{MAX_BODY // 1024}KB",
        en=f"the body is over {MAX_BODY // 1024} KB",
        field="body",
        status=413,
    )


def body_json(raw: bytes) -> dict[str, Any]:
    if len(raw) > MAX_BODY:
        raise too_large()
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise invalid("body", f"请求体不是JSON({exc})", f"the body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise invalid("body", "请求体应为JSON对象", "the body is a JSON object (a resource)")
    return data


def _path(kind: str, loc: tuple[Any, ...]) -> str:
    out = kind
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part != "__root__":
            out += f".{part}"
    return out


def resource(data: dict[str, Any], model: type[R]) -> R:
    """The resource through its R4B model; every bad element named."""
    kind = model.get_resource_type()
    given = data.get("resourceType")
    if given != kind:
        raise invalid(
            f"{kind}.resourceType",
            f"resourceType应为{kind}",
            f"resourceType is {kind}, not {str(given)[:40]}",
            "resource_type",
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = []
        for e in exc.errors(include_url=False):
            where = _path(kind, tuple(e["loc"]))
            if e["type"] == "missing":
                problems.append(
                    FieldProblem(where, "缺少必填元素", "a required element is missing")
                )
            else:
                msg = str(e.get("msg", "invalid"))[:200]
                problems.append(FieldProblem(where, "元素值无效", f"invalid: {msg}"))
        first = problems[0]
        missing = exc.errors(include_url=False)[0]["type"] == "missing"
        raise DomainError(
            code="validation.missing" if missing else "validation.fhir",
            zh=first.zh,
            en=first.en,
            field=first.field,
            status=422,
            problems=problems,
        ) from None
    except (ValueError, TypeError) as exc:  # a model's own check outside pydantic's errors
        raise invalid(kind, "资源无效", f"invalid resource: {str(exc)[:200]}") from None


def patient_id(reference: str | None, where: str) -> int:
    m = _PATIENT.fullmatch((reference or "").strip())
    if m is None:
        raise invalid(where, "应为Patient/{id}引用", "a reference Patient/{id}", "reference")
    return int(m.group(1))


def fen(value: Any, where: str) -> int:
    """An amount in yuan (a FHIR decimal) as fen: not negative, whole fen."""
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise invalid(where, "金额格式错误", "an amount is a decimal", "amount") from None
    if not amount.is_finite():
        raise invalid(where, "金额格式错误", "an amount is a decimal", "amount")
    if amount < 0:
        raise invalid(where, "金额不能为负", "an amount is not negative", "amount")
    if amount >= YUAN_MAX:
        raise invalid(where, "金额过大", "an amount is under 10,000,000,000 yuan", "amount")
    if amount != amount.quantize(Decimal("0.01")):
        raise invalid(
            where, "金额最多两位小数(分)", "an amount is whole fen (two decimals)", "amount"
        )
    return int(amount * 100)


def _money(m: Any, where: str) -> int:
    if m is None or m.value is None:
        raise invalid(f"{where}.value", "缺少金额", "the amount is missing", "missing")
    if m.currency not in (None, "CNY"):
        raise invalid(f"{where}.currency", "币种应为CNY", "the currency is CNY", "currency")
    return fen(m.value, f"{where}.value")


def claim(data: dict[str, Any], now: dt.datetime) -> ClaimInput:
    c = resource(data, Claim)
    ident = next((i for i in c.identifier or [] if i.system and i.value), None)
    if ident is None:
        raise invalid(
            "Claim.identifier",
            "Claim须有标识(system与value)，作为幂等键",
            "a Claim needs an identifier (system and value): its idempotency key",
            "missing",
        )
    if (
        len(ident.value or "") > IDENTIFIER_MAX
        or len(ident.system or "") > 200
        or not _TEXT.fullmatch(ident.value or "")
        or not _TEXT.fullmatch(ident.system or "")
    ):
        raise invalid(
            "Claim.identifier",
            f"标识最长{IDENTIFIER_MAX}个字符",
            f"the identifier's value is at most {IDENTIFIER_MAX} printable characters",
            "length",
        )
    person = patient_id(c.patient.reference if c.patient else None, "Claim.patient")
    org = _ORG.fullmatch((c.provider.reference or "").strip()) if c.provider else None
    if org is None:
        raise invalid(
            "Claim.provider",
            "应为Organization/{机构编码}",
            "a reference Organization/{institution code}",
            "reference",
        )
    items = c.item or []
    if not items:
        raise invalid("Claim.item", "至少一项费用", "at least one item", "missing")
    if len(items) > ITEMS_MAX:
        raise invalid("Claim.item", f"最多{ITEMS_MAX}项", f"at most {ITEMS_MAX} items", "too_long")
    lines = []
    seen: set[int] = set()
    for i, item in enumerate(items):
        where = f"Claim.item[{i}]"
        coding = (
            next(iter(item.productOrService.coding or []), None) if item.productOrService else None
        )
        if coding is None or not coding.code or not _CODE.fullmatch(coding.code):
            raise invalid(
                f"{where}.productOrService",
                "缺少目录编码",
                "the catalogue code (coding.code) is missing",
                "missing",
            )
        sequence = int(item.sequence or i + 1)
        if sequence in seen:
            raise invalid(
                f"{where}.sequence", "序号重复", "the sequence is used twice", "duplicate"
            )
        seen.add(sequence)
        quantity = (
            Decimal(str(item.quantity.value))
            if item.quantity and item.quantity.value is not None
            else Decimal(1)
        )
        if quantity <= 0 or quantity > 99999:
            raise invalid(f"{where}.quantity", "数量无效", "the quantity is above zero", "quantity")
        if item.net is not None:
            amount = _money(item.net, f"{where}.net")
        elif item.unitPrice is not None:
            unit = _money(item.unitPrice, f"{where}.unitPrice")
            product = Decimal(unit) * quantity
            if product != product.to_integral_value():
                raise invalid(
                    f"{where}.net", "金额应为整分", "the item's amount is whole fen", "amount"
                )
            amount = int(product)
        else:
            raise invalid(
                f"{where}.net", "缺少金额", "the item's amount (net) is missing", "missing"
            )
        unit_price = _money(item.unitPrice, f"{where}.unitPrice") if item.unitPrice else amount
        lines.append(
            ClaimLine(sequence, coding.code, amount, format(quantity.normalize(), "f"), unit_price)
        )
    total = _money(c.total, "Claim.total") if c.total is not None else sum(x.amount for x in lines)
    start = c.billablePeriod.start if c.billablePeriod and c.billablePeriod.start else c.created
    if start is None:
        begntime = now
    elif isinstance(start, dt.datetime):
        begntime = start if start.tzinfo else start.replace(tzinfo=CHINA)
    else:
        begntime = dt.datetime.combine(start, dt.time(), CHINA)
    med_type = "11"
    for coding in (c.subType.coding or []) if c.subType else []:
        if coding.system == MED_TYPE and coding.code:
            med_type = coding.code
    use_account = True
    for ext in c.extension or []:
        if ext.url == ACCOUNT_USED and ext.valueBoolean is not None:
            use_account = bool(ext.valueBoolean)
    return ClaimInput(
        system=str(ident.system),
        value=str(ident.value),
        person_id=person,
        provider=org.group(1),
        begntime=begntime,
        med_type=med_type,
        lines=lines,
        total=total,
        use_account=use_account,
    )


def search_identifier(given: str | None) -> tuple[str, str]:
    """``identifier=system|value``, each printable and bounded."""
    if not given or "|" not in given:
        raise invalid(
            "identifier",
            "应为identifier=system|value",
            "identifier=system|value is required",
            "missing",
        )
    system, value = given.split("|", 1)
    if len(value) > IDENTIFIER_MAX or len(system) > 200 or not _TEXT.fullmatch(given):
        raise invalid(
            "identifier",
            f"标识最长{IDENTIFIER_MAX}个可打印字符",
            f"the identifier's value is at most {IDENTIFIER_MAX} printable characters",
            "format",
        )
    return system, value


def eligibility_request(data: dict[str, Any]) -> tuple[int, str | None]:
    r = resource(data, CoverageEligibilityRequest)
    return patient_id(
        r.patient.reference if r.patient else None, "CoverageEligibilityRequest.patient"
    ), r.id


def search_date(values: list[str]) -> tuple[dt.datetime | None, dt.datetime | None]:
    """``date=ge2026-11-23&date=lt2026-11-24`` (China days, or times)."""
    start = end = None
    for v in values:
        prefix, text = (v[:2], v[2:]) if v[:2] in ("ge", "gt", "le", "lt", "eq") else ("eq", v)
        try:
            if len(text) == 10:
                day = dt.date.fromisoformat(text)
                lo = dt.datetime.combine(day, dt.time(), CHINA)
                hi = lo + dt.timedelta(days=1)
            else:
                lo = dt.datetime.fromisoformat(text)
                lo = lo if lo.tzinfo else lo.replace(tzinfo=CHINA)
                hi = lo
        except ValueError:
            raise invalid(
                "date", "日期格式应为yyyy-MM-dd", "date is yyyy-MM-dd (with ge, lt, ...)", "format"
            ) from None
        if not (1900 <= lo.year <= 2100):
            raise invalid("date", "日期超出范围", "date is between 1900 and 2100", "range")
        if prefix in ("ge", "gt"):
            start = lo if prefix == "ge" else hi
        elif prefix in ("le", "lt"):
            end = hi if prefix == "le" else lo
        else:
            start, end = lo, hi
    return start, end
