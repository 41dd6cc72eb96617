"""Where a settlement's database work grows with the data set: every
statement the fast path runs, with EXPLAIN (ANALYZE, BUFFERS) by
``auto_explain``, on the kept data set and on a fresh database, side by side.

    .venv/bin/python -m bench.explain [--dataset 1000000] [--settlements 200] [--plans]

Both servers run with the benchmarks' settings (``dataset.DEFAULT_SETTINGS``)
plus ``auto_explain`` logging every statement, nested ones included (the
fast path's PL/pgSQL functions), with its buffers. A warm-up of as many
settlements comes first on each. The settlements are made in this process
as ``bench.settlement``'s profile makes them (the app's own fast path, no
HTTP). The table gives, per statement and settlement, the shared buffers
hit and read (a read is a page that was not in shared buffers: from the
operating system's cache or the disk), the pages dirtied, and the time;
``--plans`` also prints the plan of each statement on the data set.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from bench import dataset, settlement
from yibao.store import migrate
from yibao.testing.pgcluster import PgCluster

AUTO_EXPLAIN = {
    "shared_preload_libraries": "auto_explain",
    "auto_explain.log_min_duration": "0",
    "auto_explain.log_analyze": "on",
    "auto_explain.log_buffers": "on",
    "auto_explain.log_timing": "off",
    "auto_explain.log_nested_statements": "on",
}

_ENTRY = re.compile(r"^\S+ \S+ \S+ \[\d+\] LOG:  duration: ([\d.]+) ms  plan:$")
_BUFFERS = re.compile(r"Buffers: shared(?: hit=(\d+))?(?: read=(\d+))?(?: dirtied=(\d+))?")


@dataclass
class Stat:
    calls: int = 0
    ms: float = 0.0
    hit: int = 0
    read: int = 0
    dirtied: int = 0
    plan: list[str] = field(default_factory=list)


def parse(log: str) -> dict[str, Stat]:
    """The log's auto_explain entries, by the statement's text."""
    stats: dict[str, Stat] = defaultdict(Stat)
    lines = log.splitlines()
    k = 0
    while k < len(lines):
        m = _ENTRY.match(lines[k])
        k += 1
        if not m:
            continue
        body: list[str] = []
        while k < len(lines) and lines[k].startswith("\t"):
            body.append(lines[k][1:])
            k += 1
        text_lines = [b for b in body if b.startswith("Query Text:")]
        if not text_lines:
            continue
        query = " ".join(text_lines[0][len("Query Text:") :].split())[:90]
        s = stats[query]
        s.calls += 1
        s.ms += float(m.group(1))
        top = next((b for b in body if "Buffers: shared" in b), "")
        found = _BUFFERS.search(top)
        if found:
            s.hit += int(found.group(1) or 0)
            s.read += int(found.group(2) or 0)
            s.dirtied += int(found.group(3) or 0)
        if not s.plan:
            s.plan = [b for b in body if not b.startswith("Query Text:")][:25]
    return stats


def explained(cluster: PgCluster, log: Path, url: str, work: list, audit_key: str, n: int):  # type: ignore[no-untyped-def,type-arg]
    """Warm up on the first half of ``work``, then the statements of the second."""
    quiet = io.StringIO()
    with contextlib.redirect_stdout(quiet):
        settlement.profile(url, work[:n], audit_key)
    start = log.stat().st_size
    with contextlib.redirect_stdout(quiet):
        settlement.profile(url, work[n:], audit_key)
    with log.open() as f:
        f.seek(start)
        return parse(f.read())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", type=int, default=1_000_000, metavar="PERSONS")
    parser.add_argument("--dataset-settlements", type=int, default=20)
    parser.add_argument("--dataset-seed", type=int, default=1)
    parser.add_argument("--fresh-persons", type=int, default=3000)
    parser.add_argument("--settlements", type=int, default=200)
    parser.add_argument("--plans", action="store_true")
    args = parser.parse_args()
    n = args.settlements
    sides: dict[str, dict[str, Stat]] = {}

    fresh = PgCluster(durable=True, settings=AUTO_EXPLAIN).start()
    try:
        url = fresh.create_database("yibao")
        migrate.upgrade(url)
        work = settlement.load(url, max(args.fresh_persons, 2 * n))[: 2 * n]
        assert fresh.root is not None
        sides["fresh"] = explained(fresh, fresh.root / "log", url, work, "", n)
    finally:
        fresh.stop()

    params = dataset.Params(args.dataset, args.dataset_settlements, args.dataset_seed)
    where = dataset.build(params)
    kept = dataset.KeptCluster(
        durable=True, settings={**dataset.DEFAULT_SETTINGS, **AUTO_EXPLAIN}, keep=where
    )
    kept.start()
    try:
        url = kept.url(dataset.DATABASE)
        work = dataset.fresh_visits(url, params, 2 * n, dataset.next_run(where))
        sides["dataset"] = explained(
            kept, where / "log", url, work, dataset.audit_key_text(params), n
        )
    finally:
        kept.stop()

    a, b = sides["fresh"], sides["dataset"]
    print(
        f"per settlement (1101 + 2207), {n} settlements after {n} of warm-up; "
        f"fresh: {args.fresh_persons:,} persons; data set: {args.dataset:,} persons"
    )
    print(
        "| statement | calls | fresh hit / read / dirtied | data set hit / read / dirtied "
        "| fresh ms | data set ms |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    keys = sorted(set(a) | set(b), key=lambda q: -(b[q].read if q in b else 0))
    for q in keys:
        x, y = a.get(q, Stat()), b.get(q, Stat())
        print(
            f"| `{q}` | {y.calls / n:.1f} | {x.hit / n:.1f} / {x.read / n:.2f} / {x.dirtied / n:.2f} "
            f"| {y.hit / n:.1f} / {y.read / n:.2f} / {y.dirtied / n:.2f} "
            f"| {x.ms / n:.3f} | {y.ms / n:.3f} |"
        )
    if args.plans:
        for q in keys[:12]:
            print(f"\n{q}\n  " + "\n  ".join(b[q].plan if q in b else []))


if __name__ == "__main__":
    main()
