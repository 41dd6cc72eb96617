"""Put a demo person's card or insurance in a given state, for the tests of
what the person's channels (portal, terminal, telephone) then show.

The rows are written straight into the test's database: how a card comes to
be lost or a person to be registered dead is the cards' and the closing
services' business and tested there; here only the state matters."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from stdnum import luhn

from yibao.store.models import Card, Enrolment, Person

CARD_STATES = ("lost", "frozen", "cancelled", "replaced", "in_production")
PERSON_STATES = ("deceased", "emigrated", "transferred_out")

# what each channel says, from domain.use
CARD_SAYS = {
    "lost": ("该卡已挂失，不能使用", "the card is lost; it cannot be used"),
    "frozen": ("该卡已冻结，不能使用", "the card is frozen; it cannot be used"),
    "cancelled": ("该卡已注销，不能使用", "the card is cancelled; it cannot be used"),
    "replaced": ("该卡已补换新卡，旧卡不能使用", "this card was replaced by a reissued card"),
    "in_production": ("该卡尚未发放，不能使用", "not yet issued; it cannot be used"),
}
PERSON_SAYS = {
    "deceased": ("该参保人已死亡，参保关系已终止", "the person has died"),
    "emigrated": ("该参保人已出国定居，参保关系已终止", "the person has emigrated"),
    "transferred_out": ("该参保人医保关系已转出", "insurance relation was transferred out"),
}


def set_card(services: Any, card_no: str, state: str) -> str | None:
    """Put the card in ``state``; for ``replaced``, a reissued card replaces
    it (its number is returned)."""
    with services.uow() as uow:
        card = uow.session.execute(select(Card).where(Card.card_no == card_no)).scalar_one()
        now = uow.clock.now()
        new_no = None
        card.status = "cancelled" if state == "replaced" else state
        card.updated_at = now
        if state == "replaced":
            body = "9" + card_no[1:9]  # another number, with its own Luhn digit
            new_no = body + luhn.calc_check_digit(body)
            uow.session.flush()
            uow.session.add(
                Card(
                    card_no=new_no,
                    person_id=card.person_id,
                    kind=card.kind,
                    status="issued",
                    pin_hash=card.pin_hash,
                    location="holder",
                    issued_at=now,
                    replaces_card_id=card.id,
                    created_at=now,
                    updated_at=now,
                )
            )
        uow.commit()
        return new_no


def set_person(services: Any, certno: str, status: str) -> None:
    """The person's insurance relation: active, deceased, emigrated, transferred_out."""
    with services.uow() as uow:
        person = uow.session.execute(select(Person).where(Person.certno == certno)).scalar_one()
        person.status = status
        uow.commit()


def suspend(services: Any, certno: str, since: dt.date = dt.date(2026, 10, 1)) -> None:
    """The person's open enrolments are suspended for unpaid contributions."""
    with services.uow() as uow:
        person = uow.session.execute(select(Person).where(Person.certno == certno)).scalar_one()
        rows = uow.session.execute(
            select(Enrolment).where(
                Enrolment.person_id == person.id, Enrolment.status != "terminated"
            )
        ).scalars()
        for enrolment in rows:
            enrolment.status = "suspended"
            enrolment.suspended_since = since
        uow.commit()


def lose_the_database(request: Any, app: Any, db_url: str) -> None:
    """The database goes away under a running application: PostgreSQL's
    database is dropped (its connections ended); SQLite's file is replaced
    by a directory, so that no connection opens."""
    import shutil
    from pathlib import Path

    import psycopg

    app.state.services.engine.dispose()
    if db_url.startswith("sqlite"):
        path = Path(db_url.removeprefix("sqlite:///"))
        path.unlink()
        for extra in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            extra.unlink(missing_ok=True)
        path.mkdir()
        request.addfinalizer(lambda: shutil.rmtree(path, ignore_errors=True))
        return
    cluster = request.getfixturevalue("pg_cluster")
    name = db_url.rsplit("/", 1)[1]
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
