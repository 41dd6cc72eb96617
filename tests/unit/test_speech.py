"""Amounts and dates read the way a listener on the telephone expects."""

import datetime as dt

import pytest

from yibao.domain import speech

# (fen, Mandarin, English)
AMOUNTS = [
    (0, "零元", "zero yuan"),
    (5, "五分", "five fen"),
    (50, "五角", "fifty fen"),
    (2, "两分", "two fen"),
    (1000, "十元", "ten yuan"),
    (1500, "十五元", "fifteen yuan"),
    (10050, "一百元五角", "one hundred yuan and fifty fen"),
    (100100, "一千零一元", "one thousand one yuan"),
    (
        123456,
        "一千二百三十四元五角六分",
        "one thousand two hundred thirty-four yuan and fifty-six fen",
    ),
    (1000001, "一万元零一分", "ten thousand yuan and one fen"),
    (1000000, "一万元", "ten thousand yuan"),
    (10010000, "十万零一百元", "one hundred thousand one hundred yuan"),
    (100000000, "一百万元", "one million yuan"),
    (100000100, "一百万零一元", "one million one yuan"),
    (
        222222,
        "两千二百二十二元两角两分",
        "two thousand two hundred twenty-two yuan and twenty-two fen",
    ),
    (200, "两元", "two yuan"),
    (1200, "十二元", "twelve yuan"),
    (20000000, "二十万元", "two hundred thousand yuan"),
    (2000000, "两万元", "twenty thousand yuan"),
    (1001000000, "一千零一万元", "ten million ten thousand yuan"),
    (10000000000, "一亿元", "one hundred million yuan"),
    (578000, "五千七百八十元", "five thousand seven hundred eighty yuan"),
    (-1705, "负十七元零五分", "minus seventeen yuan and five fen"),
]


@pytest.mark.parametrize(("fen", "zh", "en"), AMOUNTS)
def test_amounts_are_read_in_mandarin_and_english(fen, zh, en):
    assert speech.amount_zh(fen) == zh
    assert speech.amount_en(fen) == en


def test_the_seed_example_reads_as_the_issue_says():
    assert "余额" + speech.amount_zh(123456) == "余额一千二百三十四元五角六分"


@pytest.mark.parametrize(
    ("n", "zh"),
    [(10, "十"), (110, "一百一十"), (1010, "一千零一十"), (100000, "十万"), (2002, "两千零二")],
)
def test_zero_and_ten_rules_in_mandarin(n, zh):
    assert speech.integer_zh(n) == zh


def test_dates_are_read_in_words():
    day = dt.date(2026, 11, 23)
    assert speech.date_zh(day) == "二零二六年十一月二十三日"
    assert speech.date_en(day) == "November twenty-third, two thousand twenty-six"
    assert speech.date_zh(dt.date(2026, 2, 2)) == "二零二六年二月二日"  # never 两 in a date
    assert speech.date_en(dt.date(2026, 3, 1)) == "March first, two thousand twenty-six"
    assert speech.month_zh(202610) == "二零二六年十月"
    assert speech.month_en(202610) == "October two thousand twenty-six"


def test_card_digits_are_read_one_by_one():
    assert speech.digits("1024", "zh") == "一零二四"
    assert speech.digits("1024", "en") == "one zero two four"
