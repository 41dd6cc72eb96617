import datetime as dt

import pytest

from yibao.domain.errors import DomainError
from yibao.domain.ids import (
    is_card_no,
    make_credit_code,
    make_resident_id,
    new_account_no,
    new_card_no,
    parse_resident_id,
    validate_credit_code,
)

GOOD = make_resident_id("330502", dt.date(1985, 3, 12), 11)


def test_valid_id_number_gives_birth_date_and_gender():
    rid = parse_resident_id(GOOD)
    assert rid.birth_date == dt.date(1985, 3, 12)
    assert rid.gender == "1"  # sequence 011 is odd: male
    assert parse_resident_id(make_resident_id("330502", dt.date(1990, 1, 2), 22)).gender == "2"


def test_known_published_example_is_accepted():
    # The GB 11643 worked example used in many references.
    assert parse_resident_id("11010519491231002X").birth_date == dt.date(1949, 12, 31)


def test_id_number_with_wrong_check_digit_is_refused_naming_field_and_reason():
    wrong = GOOD[:-1] + ("0" if GOOD[-1] != "0" else "1")
    with pytest.raises(DomainError) as err:
        parse_resident_id(wrong)
    assert err.value.field == "certno"
    assert err.value.code == "validation.checksum"
    assert "校验位" in err.value.message and "check character" in err.value.message
    assert err.value.status == 422


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("", "validation.required"),
        ("33050219850312011", "validation.length"),
        ("3305021985031201122", "validation.length"),
        ("33050219850312A112", "validation.format"),
        ("330502198502300112", "validation.birth_date"),  # 30 February
        # str.isdigit() takes these, int() then fails or reads another digit
        ("33050219850312011²", "validation.format"),
    ],
)
def test_malformed_id_numbers_are_refused_with_a_reason(value, code):
    with pytest.raises(DomainError) as err:
        parse_resident_id(value, field="delegate_certno")
    assert err.value.code == code
    assert err.value.field == "delegate_certno"


def test_full_width_digits_of_an_input_method_are_read_as_the_ascii_number():
    assert parse_resident_id("３３0502198503120112", field="certno").number == (
        "330502198503120112"
    )


def test_lower_case_x_is_accepted_as_the_check_character():
    assert parse_resident_id("11010519491231002x").number == "11010519491231002X"


def test_birth_date_in_the_future_is_refused():
    future = make_resident_id("330502", dt.date(2030, 1, 1), 11)
    with pytest.raises(DomainError) as err:
        parse_resident_id(future, today=dt.date(2026, 11, 23))
    assert err.value.code == "validation.birth_date"


def test_credit_code_check_character():
    code = make_credit_code("91330502MA2B3C4D5")
    assert validate_credit_code(code.lower()) == code
    bad = code[:-1] + ("0" if code[-1] != "0" else "1")
    with pytest.raises(DomainError) as err:
        validate_credit_code(bad)
    assert err.value.field == "uscc" and err.value.code == "validation.checksum"
    with pytest.raises(DomainError) as err:
        validate_credit_code("91330502")
    assert err.value.code == "validation.length"


def test_drawn_card_and_account_numbers_carry_a_luhn_digit():
    for _ in range(50):
        assert is_card_no(new_card_no())
        account = new_account_no("330502")
        assert len(account) == 16 and account.startswith("330502")
    assert not is_card_no("5720001015")
