"""The audit entry's hashed payload, whole and cut around the person id."""

from __future__ import annotations

import datetime as dt
import json

from hypothesis import given
from hypothesis import strategies as st

from yibao.domain.audit import AuditRecord, tail_around_person

AT = dt.datetime(2026, 11, 23, 12, 30, 1, 250000, tzinfo=dt.UTC)


@given(
    person_id=st.integers(min_value=1, max_value=2**62),
    subject=st.text(max_size=20),
    detail=st.dictionaries(st.text(max_size=5), st.one_of(st.integers(), st.text(max_size=5))),
)
def test_the_cut_tail_joined_with_the_person_is_the_tail(
    person_id: int, subject: str, detail: dict[str, object]
) -> None:
    record = AuditRecord("institution", "H33050200001", "330502", "his", "his.person_info")
    record.subject, record.detail = subject, detail
    head, rest = tail_around_person(record, AT)
    record.person_id = person_id
    assert head + str(person_id) + rest == record.tail(AT)
    # the layout the stored hashes were made with: one JSON list, keys sorted
    whole = [
        "2026-11-23T12:30:01.250000Z",
        *("institution", "H33050200001", "330502", "his", "his.person_info"),
        person_id,
        subject,
        detail,
    ]
    assert record.tail(AT) == json.dumps(
        whole, ensure_ascii=False, sort_keys=True, separators=(",", ":")
    )


def test_the_tail_names_the_person_where_the_cut_is() -> None:
    record = AuditRecord("staff", "zhang", "330502001", "counter", "person.read", subject="卡")
    head, rest = tail_around_person(record, AT)
    assert (
        head
        == '["2026-11-23T12:30:01.250000Z","staff","zhang","330502001","counter","person.read",'
    )
    assert rest == ',"卡",{}]'
