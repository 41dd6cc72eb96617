"""What people and machines type, read the same way by every channel."""

import datetime as dt

import pytest

from yibao.domain import values
from yibao.domain.errors import DomainError
from yibao.domain.money import yuan_to_fen


@pytest.mark.parametrize(
    ("given", "fen"),
    [("12.30", 1230), ("0.1", 10), (12.3, 1230), (100, 10000), ("-5.5", -550), ("1.230", 123)],
)
def test_amounts_in_yuan_become_fen(given, fen):
    assert yuan_to_fen(given) == fen


@pytest.mark.parametrize(
    "given",
    [
        "1e20",
        "1e999999",
        "１２３",
        1e20,
        float("inf"),
        "12.345",
        0.1 + 0.2,
        "",
        None,
        True,
        "9" * 13,
        [1],
    ],
)
def test_a_hostile_amount_is_refused_naming_the_field(given):
    with pytest.raises(DomainError) as refused:
        yuan_to_fen(given, field="input.data.medfee_sumamt")
    assert refused.value.field == "input.data.medfee_sumamt" and refused.value.status == 422


@pytest.mark.parametrize(
    "given", ["2026-1²", "２０２６-11", "2026-13", "9999-01", "0001-01", "202611x"]
)
def test_a_month_is_ascii_digits_in_the_years_people_live_in(given):
    with pytest.raises(DomainError):
        values.month(given)


def test_a_month():
    assert values.month("2026-11") == values.month(202611) == 202611


@pytest.mark.parametrize(
    "given", ["9999-12-31", "0001-01-01", "2026-02-30", "2026-1-1", "２０２６-01-01"]
)
def test_a_date_is_refused_outside_1900_to_2100_or_impossible(given):
    with pytest.raises(DomainError) as refused:
        values.date(given, field="start")
    assert refused.value.field == "start"


def test_a_time_in_china():
    t = values.time("2026-11-23 09:30:00", field="begntime")
    assert t.utcoffset() == dt.timedelta(hours=8) and t.hour == 9
    assert values.time("2026-11-23", field="begntime").hour == 0
    for bad in ("0001-01-01 00:00:00", "9999-12-31 23:59:59", "2026-11-23 25:00:00"):
        with pytest.raises(DomainError):
            values.time(bad, field="begntime")


def test_counts_are_bounded_and_ascii():
    assert values.count("12", field="days", most=3660) == 12
    for bad in ("100000000000", "-1", "1²", "１", True, "1.5"):
        with pytest.raises(DomainError):
            values.count(bad, field="days", most=3660)


def test_digits():
    assert values.digits(" 135790 ", field="pin", length=6) == "135790"
    for bad in ("13579０", "12345", "12345²"):
        with pytest.raises(DomainError):
            values.digits(bad, field="pin", length=6)


# ---- issue 14, the HIS interface: quantities and identifiers


def test_a_number_is_ascii_digits_with_bounded_decimals():
    from decimal import Decimal

    q = values.number
    assert q("0.5", field="cnt", places=4, most_digits=12) == Decimal("0.5")
    assert q(2, field="cnt", places=4, most_digits=12) == Decimal(2)
    assert q(0.25, field="cnt", places=4, most_digits=12) == Decimal("0.25")
    assert q("1.50000", field="cnt", places=4, most_digits=12) == Decimal("1.5")
    for bad in ("１", "1²", "-1", "1e3", "1e999999", 1e20, "0.00001", "9" * 13, True, None, [1]):
        with pytest.raises(DomainError) as refused:
            q(bad, field="cnt", places=4, most_digits=12)
        assert refused.value.field == "cnt"
    assert q("-1.5", field="amt", places=2, most_digits=3, signed=True) == Decimal("-1.5")
    with pytest.raises(DomainError) as refused:
        q(
            "1.555",
            field="amt",
            places=2,
            most_digits=3,
            what=("金额", "the amount"),
            reason="amount",
        )
    assert refused.value.code == "validation.amount"
    assert "金额" in refused.value.message and "the amount" in refused.value.message


def test_an_identifier_is_visible_ascii_of_bounded_length():
    assert values.identifier(" MD123 ", field="mdtrt_id", most=40) == "MD123"
    assert values.identifier(5720001014, field="card", most=40) == "5720001014"
    for bad in ("YB1.1.2.3.é", "MD 1", "ＭＤ１", "a\x00b", "x" * 41, 1.5, True, ["x"], {"a": 1}):
        with pytest.raises(DomainError) as refused:
            values.identifier(bad, field="mdtrt_id", most=40)
        assert refused.value.field == "mdtrt_id"


# ---------------------------------------------------------------- lines and tokens (issue 14, web)


def test_a_text_is_bounded_and_without_control_characters():
    assert values.text("  张伟 ", field="name", most=50) == "张伟"
    assert values.text(None, field="name", most=50, required=False) == ""
    assert values.text(" pass word ", field="password", most=20, trim=False) == " pass word "
    assert values.text(12, field="name", most=50) == "12"
    for bad, code in (
        ("a\x00b", "validation.format"),  # PostgreSQL cannot store a NUL
        ("a\nb", "validation.format"),
        ("a\x85b", "validation.format"),
        ("a\u2028b", "validation.format"),
        ("\ud800", "validation.format"),
        ("x" * 51, "validation.length"),
        (["a"], "validation.type"),
        (True, "validation.type"),
    ):
        with pytest.raises(DomainError) as exc:
            values.text(bad, field="name", most=50)
        assert exc.value.code == code and exc.value.field == "name"
    with pytest.raises(DomainError) as exc:
        values.text(" ", field="name", most=50)
    assert exc.value.code == "validation.missing"


def test_a_token_is_ascii_letters_digits_dash_and_underscore():
    assert values.token("aZ0-_", field="csrf", most=64) == "aZ0-_"
    for bad in ("", "é", "a.b", "a b", "x" * 65, None, 5, "ab\x00"):
        with pytest.raises(DomainError) as exc:
            values.token(bad, field="csrf", most=64)
        assert exc.value.field == "csrf"


# ---------------------------------------------------------------- codes and keys (the staff API)


def test_a_code_is_ascii_letters_digits_and_a_few_marks():
    assert values.code(" S20261123AB12CD34EF ", field="app_no") == "S20261123AB12CD34EF"
    assert values.code("kiosk-01_a.b", field="code") == "kiosk-01_a.b"
    assert values.code(5720001015, field="card_no") == "5720001015"
    for bad in ("", "-x", "../etc", "ａｂｃ", "12²", "a b", "卡", None, True, ["x"], "x" * 65):
        with pytest.raises(DomainError) as refused:
            values.code(bad, field="app_no")
        assert refused.value.field == "app_no" and refused.value.status == 422


def test_a_key_is_printable_ascii_of_bounded_length():
    assert values.key(" order:2026/11 ", field="Idempotency-Key", least=8, most=64) == (
        "order:2026/11"
    )
    for bad in ("short", "x" * 65, "键" * 10, "with space", None, 12345678):
        with pytest.raises(DomainError) as refused:
            values.key(bad, field="Idempotency-Key", least=8, most=64)
        assert refused.value.field == "Idempotency-Key"


def test_a_text_of_lines_keeps_tabs_and_line_breaks_only():
    given = "张伟\tline\nnext"
    assert values.text(given, field="name", most=50, lines=True) == given
    for bad in ("a\x00b", "\ud800", "x\udfffy", "\x1b[31m", "\x85"):
        with pytest.raises(DomainError) as refused:
            values.text(bad, field="name", most=50, lines=True)
        assert refused.value.field == "name"


def test_an_upload_is_read_to_one_byte_past_its_limit_and_refused_when_larger() -> None:
    import io

    asked: list[int] = []

    def read(n: int, data: io.BytesIO = io.BytesIO(b"x" * 100)) -> bytes:
        asked.append(n)
        return data.read(n)

    with pytest.raises(DomainError) as refused:
        values.upload(read, most=10)
    assert (refused.value.field, refused.value.code) == ("file", "validation.too_large")
    assert asked == [11]  # never the whole file
    assert values.upload(io.BytesIO(b"y" * 10).read, most=10) == b"y" * 10
