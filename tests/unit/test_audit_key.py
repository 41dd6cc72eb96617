"""The audit key: each entry's keyed link, the database's way of making the
same link without the key, signed checkpoints, the key's own setting, and
the ledger's records' digests (domain/audit.py, domain/ledger_audit.py)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from yibao.config import Settings
from yibao.domain import ledger_audit
from yibao.domain.audit import (
    GENESIS,
    Anchor,
    AuditKey,
    AuditRecord,
    CheckpointError,
    checkpoint_text,
    link_message,
    read_checkpoint,
)

AT = dt.datetime(2026, 11, 23, 12, 30, 1, 250000, tzinfo=dt.UTC)
KEY = AuditKey(b"k" * 32)


def _record(**changes: object) -> AuditRecord:
    record = AuditRecord("staff", "zhang", "330502001", "counter", "person.read", 7, "卡", {"a": 1})
    for name, value in changes.items():
        setattr(record, name, value)
    return record


@given(
    person_id=st.one_of(st.none(), st.integers(min_value=1, max_value=2**62)),
    seq=st.integers(min_value=1, max_value=2**31),
    subject=st.text(max_size=30),
)
def test_the_link_the_database_completes_from_the_pads_is_the_keyed_hash(
    person_id: int | None, seq: int, subject: str
) -> None:
    """yb_audit_append has SHA-256 but no HMAC and never sees the key: from
    the pads it computes sha256(okey + sha256(ikey + place)), which must be
    the link yibao verifies."""
    record = _record(person_id=person_id, subject=subject)
    ikey, okey = KEY.pads(record, AT)
    place = link_message("ab" * 32, record.chain, seq, person_id)
    by_the_database = hashlib.sha256(okey + hashlib.sha256(ikey + place).digest()).hexdigest()
    assert by_the_database == KEY.link(record, AT, prev_hash="ab" * 32, chain=record.chain, seq=seq)


def test_the_link_covers_every_field_the_place_and_the_predecessor() -> None:
    base = KEY.link(_record(), AT, prev_hash=GENESIS, chain=7, seq=3)
    others = {
        KEY.link(_record(**{name: value}), AT, prev_hash=GENESIS, chain=7, seq=3)
        for name, value in {
            "actor_kind": "institution",
            "actor_id": "li",
            "actor_division": "330502",
            "channel": "api",
            "action": "person.update",
            "person_id": 8,
            "subject": "卡2",
            "detail": {"a": 2},
        }.items()
    }
    others |= {
        KEY.link(_record(), AT + dt.timedelta(microseconds=1), prev_hash=GENESIS, chain=7, seq=3),
        KEY.link(_record(), AT, prev_hash="1" * 64, chain=7, seq=3),
        KEY.link(_record(), AT, prev_hash=GENESIS, chain=8, seq=3),
        KEY.link(_record(), AT, prev_hash=GENESIS, chain=7, seq=4),
        AuditKey(b"j" * 32).link(_record(), AT, prev_hash=GENESIS, chain=7, seq=3),
    }
    assert base not in others and len(others) == 13


def test_the_entry_secret_leaves_out_the_person_whom_the_link_binds() -> None:
    """yb_his_person learns the person inside the database: the secret sent
    before is the same for any person, the link is not."""
    assert KEY.pads(_record(person_id=None), AT) == KEY.pads(_record(person_id=5), AT)
    assert KEY.link(_record(person_id=5), AT, prev_hash=GENESIS, chain=5, seq=1) != KEY.link(
        _record(person_id=21), AT, prev_hash=GENESIS, chain=5, seq=1
    )


def test_the_key_is_never_shown() -> None:
    assert "kkkk" not in repr(KEY) and KEY.id in repr(KEY)


def test_an_audit_key_has_at_least_32_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="32"):
        AuditKey(b"short")
    monkeypatch.setenv("YIBAO_AUDIT_KEY", "too-short")
    with pytest.raises(ValidationError, match="YIBAO_AUDIT_KEY"):
        Settings()


def test_without_a_setting_the_key_is_made_once_into_var_readable_by_its_owner(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("YIBAO_AUDIT_KEY", raising=False)
    first = Settings(var_dir=tmp_path).effective_audit_key
    again = Settings(var_dir=tmp_path).effective_audit_key
    assert first == again and len(first) >= 32
    made = tmp_path / "audit_key"
    assert stat.S_IMODE(made.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["audit_key"]  # no temporary file left
    assert Settings(var_dir=tmp_path, audit_key="x" * 40).effective_audit_key == b"x" * 40


# ----------------------------------------------------------- checkpoints

ANCHORS = [Anchor(0, 12, 345, "a" * 64), Anchor(1, 0, None, GENESIS)]


def test_a_checkpoint_reads_back_as_it_was_signed() -> None:
    text = checkpoint_text(KEY, AT, ANCHORS)
    read = read_checkpoint(KEY, "cp.json", text)
    assert read.anchors == tuple(ANCHORS) and read.made_at == "2026-11-23T12:30:01.250000Z"


def test_a_changed_checkpoint_or_another_keys_is_refused() -> None:
    text = checkpoint_text(KEY, AT, ANCHORS)
    body = json.loads(text)
    body["chains"][0]["seq"] = 11  # moved back, as if the chain's tail were not there
    with pytest.raises(CheckpointError, match=r"cp\.json: its signature does not match"):
        read_checkpoint(KEY, "cp.json", json.dumps(body))
    with pytest.raises(CheckpointError, match="another audit key"):
        read_checkpoint(AuditKey(b"j" * 32), "cp.json", text)
    with pytest.raises(CheckpointError, match="not JSON"):
        read_checkpoint(KEY, "cp.json", "{")


# ----------------------------------------------------------- the ledger's records


def test_a_postings_digest_is_of_codes_and_amounts_in_any_order() -> None:
    one = ledger_audit.postings_digest([("IA:1", 100), ("BANK:CLEARING", -100)])
    assert one == ledger_audit.postings_digest([("BANK:CLEARING", -100), ("IA:1", 100)])
    assert one != ledger_audit.postings_digest([("IA:2", 100), ("BANK:CLEARING", -100)])
    assert one != ledger_audit.postings_digest([("IA:1", 101), ("BANK:CLEARING", -101)])


def test_keyed_sums_differ_in_the_bucket_of_a_changed_entry_only() -> None:
    ledger, audit = ledger_audit.Sums(KEY), ledger_audit.Sums(KEY)
    for i in range(50):
        ledger.add(f"k{i}", f"entry {i}")
        audit.add(f"k{i}", f"entry {i}" if i != 17 else "entry 17, as forged")
    assert ledger.differing(audit) == {ledger_audit.bucket("k17")}


def test_the_ledger_is_read_entry_by_entry_with_its_postings() -> None:
    rows = [
        (1, "a", "x", None, 10, 3, "BANK:CLEARING", -5),
        (1, "a", "x", None, 11, 4, None, 5),  # its account is missing
        (2, "b", "y", 9, None, None, None, None),  # no postings
    ]
    got = list(ledger_audit.entries(rows))
    assert [(e.id, e.postings) for e in got] == [(1, [("BANK:CLEARING", -5), ("#4", 5)]), (2, [])]
