"""The audit log's own checks: its chains intact and keyed, and, against the
signed checkpoints an operator keeps outside the database, nothing before
the newest checkpoint changed or gone (``domain/audit.py``).

Checkpoints come in as the texts of their files (the command line reads
them); a checkpoint that is not signed with this installation's audit key,
or was changed, is a problem itself and vouches for nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from yibao.domain.audit import AuditKey, Checkpoint, CheckpointError, checkpoint_text
from yibao.domain.audit import read_checkpoint as read_one
from yibao.services.ledger import ledger
from yibao.services.tx import use_case
from yibao.store import auditlog
from yibao.store.uow import UnitOfWork

# a checkpoint file as the command line read it: its name and its text
CheckpointFile = tuple[str, str]


def _read(key: AuditKey, files: Sequence[CheckpointFile]) -> tuple[list[Checkpoint], list[str]]:
    read, problems = [], []
    for name, body in files:
        try:
            read.append(read_one(key, name, body))
        except CheckpointError as exc:
            problems.append(str(exc))
    return read, problems


@dataclass
class Verified:
    result: auditlog.VerifyResult
    # the checkpoints that were checked against (their signatures good)
    checkpoints: int

    @property
    def ok(self) -> bool:
        return self.result.ok

    @property
    def problems(self) -> list[str]:
        return self.result.problems

    @property
    def entries(self) -> int:
        return self.result.entries


@use_case
def verify(uow: UnitOfWork, *, checkpoints: Sequence[CheckpointFile] = ()) -> Verified:
    """Walk every chain; with checkpoints, also what changed or vanished up
    to the newest checkpoint of each chain."""
    key = auditlog.key_of(uow.session)
    read, problems = _read(key, checkpoints)
    # one snapshot: entries appended during the walk would seem to overrun their heads
    ledger.repeatable_read(uow.session)
    result = auditlog.verify(uow.session, checkpoints=read)
    result.problems[:0] = problems
    return Verified(result, len(read))


@dataclass
class Checkpointed:
    # the signed checkpoint to keep, or None: the log did not verify
    text: str | None
    made_at: dt.datetime
    result: auditlog.VerifyResult


@use_case
def checkpoint(uow: UnitOfWork, *, previous: Sequence[CheckpointFile] = ()) -> Checkpointed:
    """A signed checkpoint of every chain's last entry, made only if the
    log verifies from the previous checkpoints on (each chain walked from its
    newest one), so that a checkpoint never vouches for a forgery."""
    key = auditlog.key_of(uow.session)
    read, problems = _read(key, previous)
    ledger.repeatable_read(uow.session)
    result = auditlog.verify(uow.session, checkpoints=read, since_checkpoints=True)
    result.problems[:0] = problems
    now = uow.clock.now()
    if not result.ok:
        return Checkpointed(None, now, result)
    return Checkpointed(checkpoint_text(key, now, result.last.values()), now, result)
