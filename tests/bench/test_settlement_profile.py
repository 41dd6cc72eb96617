"""``bench.settlement``'s in-process profile (its last part) on a tiny data
set: the benchmark is not in ``make test``, and this part of it once broke
unseen. The profile answers 1101 and 2207 through the fast path as the server
does, so it runs on PostgreSQL alone."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import create_engine, func, select

from bench import settlement as bench
from yibao.store.models import AuditEntry, Settlement

pytestmark = pytest.mark.postgresql_only

PERSONS = 3


def test_the_profile_settles_each_person_through_the_fast_path(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    work = bench.load(db_url, PERSONS)
    assert len(work) == PERSONS

    bench.profile(db_url, work)

    out = capsys.readouterr().out
    assert f"profile of {PERSONS} settlements (1101 + 2207)" in out
    served = re.search(r"requests answered by the fast path: (\d+)", out)
    assert served is not None and int(served.group(1)) == 2 * PERSONS, out
    assert "statements through SQLAlchemy" in out
    assert "Ordered by: cumulative time" in out
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            settled = conn.execute(select(func.count()).select_from(Settlement)).scalar_one()
            audited = conn.execute(
                select(func.count())
                .select_from(AuditEntry)
                .where(AuditEntry.action.in_(("his.person_info", "his.settlement")))
            ).scalar_one()
    finally:
        engine.dispose()
    assert settled == PERSONS
    assert audited == 2 * PERSONS
