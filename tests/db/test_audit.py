import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from tests.helpers import WUXING
from yibao.domain.actors import Channel
from yibao.services.access import audit
from yibao.services.registry import registry
from yibao.store.models import AuditEntry


def _read_some(uow, demo, n=3):
    for p in demo["persons"][:n]:
        registry.get_person(
            uow,
            actor=WUXING if p["division"].startswith("330502") else registry_actor(p),
            channel=Channel.API,
            account_no=p["account_no"],
        )


def registry_actor(p):
    from yibao.domain.access import Role
    from yibao.domain.actors import Actor

    return Actor.staff(username="nanxun", division=p["division"][:6], role=Role.COUNTY_CLERK)


def test_audit_log_is_intact_after_normal_work(uow, demo):
    _read_some(uow, demo)
    result = audit.verify(uow)
    assert result.ok, result.problems
    assert result.entries > 40


def test_audit_log_refuses_update_and_delete(uow, demo):
    with uow:
        entry = uow.session.execute(select(AuditEntry).limit(1)).scalar_one()
        with pytest.raises(DBAPIError):
            uow.session.execute(
                text("UPDATE audit_log SET action = 'x' WHERE id = :id"), {"id": entry.id}
            )
    with uow, pytest.raises(DBAPIError):
        uow.session.execute(text("DELETE FROM audit_log WHERE id = :id"), {"id": entry.id})


def _tamper(uow, backend, sql, params):
    """What someone with the database owner's rights could do: switch the triggers off."""
    with uow:
        if backend == "postgresql":
            uow.session.execute(text("SET LOCAL session_replication_role = replica"))
            uow.session.execute(text(sql), params)
        else:
            uow.session.execute(text("DROP TRIGGER audit_log_no_update"))
            uow.session.execute(text("DROP TRIGGER audit_log_no_delete"))
            uow.session.execute(text(sql), params)
        uow.session.commit()


def test_an_edited_audit_entry_is_found(uow, demo, backend):
    _read_some(uow, demo)
    with uow:
        entry = uow.session.execute(
            select(AuditEntry).where(AuditEntry.action == "person.read").limit(1)
        ).scalar_one()
    _tamper(
        uow,
        backend,
        "UPDATE audit_log SET actor_id = 'someone-else' WHERE id = :id",
        {"id": entry.id},
    )
    result = audit.verify(uow)
    assert not result.ok
    assert any(f"seq {entry.seq}" in p and "edited" in p for p in result.problems)


def test_a_removed_audit_entry_is_found(uow, demo, backend):
    _read_some(uow, demo)
    with uow:
        entry = uow.session.execute(
            select(AuditEntry).where(AuditEntry.seq == 2).order_by(AuditEntry.chain).limit(1)
        ).scalar_one()
    _tamper(uow, backend, "DELETE FROM audit_log WHERE id = :id", {"id": entry.id})
    result = audit.verify(uow)
    assert not result.ok
    assert any("missing" in p for p in result.problems)


def test_removing_the_last_entry_of_a_chain_is_found(uow, demo, backend):
    with uow:
        last = uow.session.execute(
            select(AuditEntry).order_by(AuditEntry.id.desc()).limit(1)
        ).scalar_one()
    _tamper(uow, backend, "DELETE FROM audit_log WHERE id = :id", {"id": last.id})
    result = audit.verify(uow)
    assert any("at the end were removed" in p for p in result.problems)


def test_audit_entry_records_who_where_channel_action_and_whose_data(uow, demo):
    p = demo["persons"][0]
    person = registry.get_person(
        uow, actor=WUXING, channel=Channel.COUNTER, account_no=p["account_no"]
    )
    with uow:
        e = uow.session.execute(
            select(AuditEntry).where(
                AuditEntry.person_id == person.id, AuditEntry.action == "person.read"
            )
        ).scalar_one()
        assert (e.actor_kind, e.actor_id, e.actor_division, e.channel, e.subject) == (
            "staff",
            "wuxing",
            "330502",
            "counter",
            p["account_no"],
        )
        assert e.at is not None
