import pytest
from sqlalchemy import func, select, text
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


# ------------------------------------------------- forgery (issue 14)


def _checkpoint(services, previous=()):
    done = audit.checkpoint(services.uow(), previous=previous)
    assert done.text is not None, done.result.problems
    return ("cp-1.json", done.text)


def _problems(services, *checkpoints):
    return audit.verify(services.uow(), checkpoints=list(checkpoints)).problems


def test_an_edit_with_the_chain_recomputed_is_found(services, demo, backend):
    """Plain SHA-256 could be recomputed by anyone who can write the
    database; the keyed link cannot, so the edited entry is named."""
    from tests.db.tampering import LOG, behind_the_back, entry, rehash_plain

    _read_some(services.uow(), demo)
    with behind_the_back(services.engine, backend) as conn:
        e = entry(conn, LOG.c.action == "person.read")
        conn.execute(
            text("UPDATE audit_log SET actor_id = 'someone-else' WHERE id = :id"), {"id": e.id}
        )
        rehash_plain(conn, e.chain, from_seq=e.seq)
    problems = _problems(services)
    assert any(f"(id {e.id})" in p for p in problems), problems


def test_a_removed_tail_with_its_head_moved_back_is_found_by_a_checkpoint(services, demo, backend):
    from tests.db.tampering import LOG, behind_the_back, entry

    _read_some(services.uow(), demo)
    checkpoint = _checkpoint(services)
    with behind_the_back(services.engine, backend) as conn:
        last = entry(conn, LOG.c.id == select(func.max(LOG.c.id)).scalar_subquery())
        before = entry(conn, LOG.c.chain == last.chain, LOG.c.seq == last.seq - 1)
        conn.execute(text("DELETE FROM audit_log WHERE id = :id"), {"id": last.id})
        conn.execute(
            text("UPDATE audit_chain_heads SET seq = :s, hash = :h WHERE chain = :c"),
            {"s": before.seq, "h": before.hash, "c": last.chain},
        )
    # what no check inside the database can see
    assert _problems(services) == []
    problems = _problems(services, checkpoint)
    assert problems == [
        f"chain {last.chain}: entries {last.seq}..{last.seq} are missing: checkpoint cp-1.json "
        f"saw seq {last.seq} (id {last.id}) (removed, the chain's tail)"
    ]


def test_a_whole_chain_removed_with_its_head_is_found_by_a_checkpoint(services, demo, backend):
    from tests.db.tampering import behind_the_back

    _read_some(services.uow(), demo)
    checkpoint = _checkpoint(services)
    with behind_the_back(services.engine, backend) as conn:
        chain, count, last_id = conn.execute(
            text(
                "SELECT chain, count(*), max(id) FROM audit_log GROUP BY chain "
                "ORDER BY count(*) DESC LIMIT 1"
            )
        ).one()
        conn.execute(text("DELETE FROM audit_log WHERE chain = :c"), {"c": chain})
        conn.execute(text("DELETE FROM audit_chain_heads WHERE chain = :c"), {"c": chain})
    assert _problems(services) == []
    assert _problems(services, checkpoint) == [
        f"chain {chain}: entries 1..{count} are missing: checkpoint cp-1.json saw seq {count} "
        f"(id {last_id}) (removed, the whole chain)"
    ]


def test_a_checkpoint_holds_even_against_someone_who_stole_the_key(services, demo, backend):
    """With the key, an edited chain can be linked anew so that it verifies;
    the checkpoint kept outside still names the entry it saw otherwise."""
    from tests.db.tampering import LOG, behind_the_back, entry, rehash_keyed

    _read_some(services.uow(), demo)
    checkpoint = _checkpoint(services)
    with behind_the_back(services.engine, backend) as conn:
        e = entry(conn, LOG.c.action == "person.read")
        last = entry(
            conn,
            LOG.c.chain == e.chain,
            LOG.c.seq
            == select(func.max(LOG.c.seq)).where(LOG.c.chain == e.chain).scalar_subquery(),
        )
        conn.execute(text("UPDATE audit_log SET subject = 'x' WHERE id = :id"), {"id": e.id})
        rehash_keyed(conn, e.chain, e.seq, services.backend.audit_key)
    assert _problems(services) == []
    assert _problems(services, checkpoint) == [
        f"chain {e.chain} seq {last.seq} (id {last.id}): is not the entry checkpoint cp-1.json "
        f"saw there (id {last.id}): changed or replaced since"
    ]


def test_entries_written_before_the_key_verify_as_a_chains_beginning_only(services, demo):
    """Entries of before migration 0015 keep their plain hash and verify;
    one with a plain hash after keyed entries was written without the key."""
    from yibao.domain.actors import Actor
    from yibao.store import auditlog

    old = Actor.system("before-0015").record(channel="cli", action="old.entry")
    with services.engine.begin() as conn:
        auditlog.append_unkeyed(conn, old, services.clock.now())
    result = audit.verify(services.uow())
    assert result.ok and result.result.plain == 1, result.problems
    _read_some(services.uow(), demo)  # keyed entries, on the chain of...
    with services.uow() as u:
        auditlog.append(u.session, [old], services.clock.now())  # ...a keyed one on its chain
        u.commit()
    with services.engine.begin() as conn:
        auditlog.append_unkeyed(conn, old, services.clock.now())
        forged = conn.execute(select(func.max(AuditEntry.id))).scalar_one()
    problems = _problems(services)
    assert problems == [
        f"chain {old.chain} seq 3 (id {forged}): has an unkeyed hash after keyed entries or "
        "after a checkpoint: written without the audit key (forged)"
    ]


def test_a_checkpoint_is_made_only_of_a_log_that_verifies(services, demo, backend):
    from tests.db.tampering import LOG, behind_the_back, entry

    first = _checkpoint(services)
    _read_some(services.uow(), demo)
    second = audit.checkpoint(services.uow(), previous=[first])
    assert second.text is not None and second.result.entries < 20  # from the first one on
    with behind_the_back(services.engine, backend) as conn:
        e = entry(conn, LOG.c.action == "person.read")
        conn.execute(text("UPDATE audit_log SET subject = 'x' WHERE id = :id"), {"id": e.id})
    refused = audit.checkpoint(services.uow(), previous=[first])
    assert refused.text is None
    assert any(f"(id {e.id})" in p for p in refused.result.problems)


def test_a_checkpoint_changed_or_made_with_another_key_vouches_for_nothing(services, demo):
    import json

    name, body = _checkpoint(services)
    changed = json.loads(body)
    changed["chains"][0]["seq"] += 1
    problems = _problems(services, (name, json.dumps(changed)))
    assert problems == [f"checkpoint {name}: its signature does not match: the file was changed"]


def test_the_checkpoint_and_verify_commands(env, demo, tmp_path):
    from tests.helpers import CliRunner
    from yibao.cli import app as cli_app

    def run(*args):
        return CliRunner().invoke(cli_app, list(args), catch_exceptions=False)

    printed = run("audit", "checkpoint")
    assert printed.exit_code == 0 and '"format": "yibao-audit-checkpoint/1"' in printed.output
    kept = tmp_path / "kept.json"
    for _ in range(2):  # the second run checks the log from the first on, and writes over it
        made = run("audit", "checkpoint", "-o", str(kept))
        assert made.exit_code == 0, made.output
    assert "from 1 earlier one(s) on" in made.output
    verified = run("audit", "verify", "--checkpoints", str(kept))
    assert verified.exit_code == 0 and "16 of 16 chains" in verified.output
    empty = tmp_path / "empty"
    empty.mkdir()
    refused = run("audit", "verify", "--checkpoints", str(empty))
    assert refused.exit_code == 1 and "no checkpoint" in refused.output
    import json

    body = json.loads(kept.read_text())
    body["chains"][3]["seq"] -= 1  # as if the chain's last entry had not been there
    kept.write_text(json.dumps(body))
    changed = run("audit", "checkpoint", "-o", str(kept))
    assert changed.exit_code == 1 and "its signature does not match" in changed.output
