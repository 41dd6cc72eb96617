"""The change history of what the public look-ups show (issue 16): each
change staff make to an institution's public fields or to a catalogue item,
with who, when, through which channel, and each field's old and new value."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from yibao.store.models.base import Base
from yibao.store.types import BigId


class DirectoryChange(Base):
    __tablename__ = "directory_changes"
    __table_args__ = (Index("ix_directory_changes_subject", "subject_kind", "subject"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    subject_kind: Mapped[str] = mapped_column(String(20))  # institution, catalogue
    # an institution's code, or a catalogue item's "area/code"
    subject: Mapped[str] = mapped_column(String(60))
    # the institution's division, or the catalogue's area: whose staff see it
    division_code: Mapped[str] = mapped_column(String(9), index=True)
    action: Mapped[str] = mapped_column(String(20))  # create, change
    # field -> [old, new]; old is null for a created object
    changes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    actor_kind: Mapped[str] = mapped_column(String(20))
    actor_id: Mapped[str] = mapped_column(String(60))
    channel: Mapped[str] = mapped_column(String(20))
    changed_at: Mapped[dt.datetime]
