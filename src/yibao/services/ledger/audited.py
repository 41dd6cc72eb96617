"""The ledger against its audit records (``domain/ledger_audit.py``): what
``yibao ledger check`` finds beyond balances and sums.

A forged entry that balances, with the balances adjusted to match, passes
every sum; it does not pass here, because its audit record would have to be
written with the audit key. Reported, each naming its row:

- a ledger entry without its audit record (written behind the application),
  or whose postings, kind or person differ from the record's (changed);
- an audit record whose ledger entry is missing (removed);
- an audit record of a ledger entry that does not match its own hash (forged);
- a posting whose entry or account is missing, an entry without postings;
- the entries written before migration 0015, changed since, as a whole.

Both sides are streamed and summed per bucket of keys
(``ledger_audit.Sums``); only buckets whose sums differ are read again, to
name the rows, so that neither side is held in memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

from yibao.domain import ledger_audit
from yibao.domain.audit import AuditKey
from yibao.store import auditlog

_ORPHANS = text(
    "SELECT p.id, p.entry_id FROM ledger_postings p "
    "LEFT JOIN ledger_entries e ON e.id = p.entry_id WHERE e.id IS NULL ORDER BY p.id"
)
_HOMELESS = text(
    "SELECT p.id, p.entry_id, p.account_id FROM ledger_postings p "
    "LEFT JOIN ledger_accounts a ON a.id = p.account_id WHERE a.id IS NULL ORDER BY p.id"
)


@dataclass(frozen=True)
class _Record:
    audit_id: int
    key: str
    summary: str


@dataclass(frozen=True)
class _Boundary:
    audit_id: int
    last_id: int
    entries: int
    digest: str


def _records(session: Session, key: AuditKey, problems: list[str]) -> Iterator[_Record]:
    """The ledger entries' audit records that are as written with the key."""
    for e in auditlog.entries_of(session, ledger_audit.ENTRY_ACTION):
        got = ledger_audit.record_summary(e.person_id, e.subject, e.detail)
        if auditlog.sealed(key, e) != "keyed" or got is None:
            problems.append(
                f"audit entry id {e.id} (chain {e.chain} seq {e.seq}): a ledger entry's record "
                "that does not match its hash: forged or edited"
            )
            continue
        yield _Record(e.id, got[0], got[1])


def _boundaries(session: Session, key: AuditKey, problems: list[str]) -> list[_Boundary]:
    found = []
    for e in auditlog.entries_of(session, ledger_audit.BOUNDARY_ACTION):
        d = e.detail if isinstance(e.detail, dict) else {}
        try:
            boundary = _Boundary(e.id, int(d["last_id"]), int(d["entries"]), str(d["digest"]))
        except (KeyError, TypeError, ValueError):
            boundary = None
        if auditlog.sealed(key, e) is None or boundary is None:
            problems.append(
                f"audit entry id {e.id} (chain {e.chain} seq {e.seq}): the record of the ledger "
                "entries before migration 0015 does not match its hash: forged or edited"
            )
            continue
        found.append(boundary)
    return sorted(found, key=lambda b: b.last_id)


def _entries(session: Session, batch: int) -> Iterator[ledger_audit.Entry]:
    rows = session.execute(text(ledger_audit.ENTRIES_SQL).execution_options(yield_per=batch))
    return ledger_audit.entries(rows)


def _legacy_changed(b: _Boundary, digest: ledger_audit.LegacyDigest) -> str | None:
    if digest.entries == b.entries and digest.hexdigest() == b.digest:
        return None
    return (
        f"the {b.entries} ledger entries written before they were audited (ids up to "
        f"{b.last_id}, audit entry id {b.audit_id}) changed since the upgrade: "
        f"{digest.entries} entries there now, and their digest differs"
    )


def cross_check(session: Session, problems: list[str], batch: int = 5000) -> None:
    """Append to ``problems`` what the ledger and its audit records disagree on."""
    key = auditlog.key_of(session)
    for posting_id, entry_id in session.execute(_ORPHANS):
        problems.append(f"posting id {posting_id}: its ledger entry id {entry_id} is missing")
    for posting_id, entry_id, account_id in session.execute(_HOMELESS):
        problems.append(
            f"posting id {posting_id} (ledger entry id {entry_id}): its account id "
            f"{account_id} is missing"
        )
    audited = ledger_audit.Sums(key)
    for record in _records(session, key, problems):
        audited.add(record.key, record.summary)
    boundaries = _boundaries(session, key, problems)
    # entries up to the last boundary are the ones written before 0015
    cutoff = boundaries[-1].last_id if boundaries else 0
    pending = list(boundaries)
    legacy = ledger_audit.LegacyDigest()
    posted = ledger_audit.Sums(key)
    for entry in _entries(session, batch):
        if not entry.postings:
            problems.append(f"ledger entry id {entry.id} ({entry.key}): has no postings")
        while pending and entry.id > pending[0].last_id:
            problems.extend(filter(None, [_legacy_changed(pending.pop(0), legacy)]))
        if entry.id <= cutoff:
            legacy.add(entry.id, entry.key, entry.kind, entry.person_id, entry.digest)
        else:
            posted.add(entry.key, entry.summary)
    for b in pending:
        problems.extend(filter(None, [_legacy_changed(b, legacy)]))
    differing = posted.differing(audited)
    if differing:
        _name_the_rows(session, key, differing, cutoff, batch, problems)


def _name_the_rows(
    session: Session,
    key: AuditKey,
    buckets: set[int],
    cutoff: int,
    batch: int,
    problems: list[str],
) -> None:
    """The second reading, of the buckets whose sums differ only."""
    records: dict[str, list[_Record]] = {}
    for record in _records(session, key, []):  # the forged ones were named already
        if ledger_audit.bucket(record.key) in buckets:
            records.setdefault(record.key, []).append(record)
    entries: dict[str, list[ledger_audit.Entry]] = {}
    for entry in _entries(session, batch):
        if entry.id > cutoff and ledger_audit.bucket(entry.key) in buckets:
            entries.setdefault(entry.key, []).append(entry)
    for entry_key in sorted(set(records) | set(entries)):
        unmatched = list(records.get(entry_key, []))
        lone = []
        for entry in entries.get(entry_key, []):
            match = next((r for r in unmatched if r.summary == entry.summary), None)
            if match is None:
                lone.append(entry)
            else:
                unmatched.remove(match)
        for entry in lone:
            if unmatched:
                record = unmatched.pop(0)
                problems.append(
                    f"ledger entry id {entry.id} ({entry_key}): its postings, kind or person "
                    f"differ from its audit record (audit entry id {record.audit_id}): "
                    "changed behind the application's back"
                )
            else:
                problems.append(
                    f"ledger entry id {entry.id} ({entry_key}): has no audit record: "
                    "written behind the application's back"
                )
        for record in unmatched:
            problems.append(
                f"audit entry id {record.audit_id} records ledger entry {entry_key}, "
                "which is missing (removed)"
            )
