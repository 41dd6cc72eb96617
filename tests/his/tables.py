"""Every table of a database as a digest of its rows: a refused request
must leave each one as it was."""

from __future__ import annotations

import hashlib

from sqlalchemy import Engine, inspect, text


def digests(engine: Engine, *, skip: frozenset[str] = frozenset()) -> dict[str, str]:
    """table -> its row count and a SHA-256 of its rows (in any order), for
    every table the database has, the migrations' own included."""
    out = {}
    with engine.connect() as conn:
        for name in sorted(inspect(conn).get_table_names()):
            if name in skip:
                continue
            rows = sorted(repr(tuple(row)) for row in conn.execute(text(f'SELECT * FROM "{name}"')))
            out[name] = f"{len(rows)} {hashlib.sha256(''.join(rows).encode()).hexdigest()}"
    return out
