"""``bench/dataset.py`` at a tiny size on the tests' PostgreSQL: it builds,
and what it builds is a ledger and an audit log that verify."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import create_engine, text

from bench import dataset
from tests.conftest import BACKENDS
from tests.helpers import START
from yibao.services.access import audit
from yibao.services.ledger import ledger
from yibao.store import migrate
from yibao.testing.pgcluster import PgCluster

needs_postgresql = pytest.mark.skipif(
    "postgresql" not in BACKENDS, reason="PostgreSQL not selected"
)

TINY = dataset.Params(persons=200, settlements=3, seed=7)


def test_reuse_key_changes_with_each_parameter() -> None:
    keys = {
        dataset.reuse_key(p)
        for p in (
            TINY,
            dataset.Params(persons=201, settlements=3, seed=7),
            dataset.Params(persons=200, settlements=4, seed=7),
            dataset.Params(persons=200, settlements=3, seed=8),
        )
    }
    assert len(keys) == 4
    assert dataset.reuse_key(TINY) == dataset.reuse_key(dataset.Params(200, 3, 7))
    assert dataset.folder(TINY).name == f"dataset-{dataset.reuse_key(TINY)}"


def test_offsets_fall_within_the_span_in_rounds() -> None:
    shape = dataset.Shape(
        TINY, 2026, dataset.dt.datetime(2026, 1, 1, tzinfo=dataset.dt.UTC), 86_400 * 300, 1000
    )
    offsets = [shape.offset(j) for j in range(shape.n)]
    assert min(offsets) >= 0 and max(offsets) < shape.span
    # each person's k-th settlement comes after their (k-1)-th
    for i in range(TINY.persons):
        mine = [offsets[k * TINY.persons + i] for k in range(TINY.settlements)]
        assert mine == sorted(mine)


def _populated(
    pg_cluster: PgCluster, name: str, params: dataset.Params
) -> tuple[str, dataset.Services]:
    """A database of the tests' cluster with the data set of ``params`` in it."""
    with psycopg.connect(pg_cluster.dsn(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    url = pg_cluster.create_database(name)
    migrate.upgrade(url)
    dataset.populate(url, params, now=START)
    return url, dataset._services(url, params)


@needs_postgresql
def test_tiny_data_set_builds_and_verifies(pg_cluster: PgCluster) -> None:
    url, services = _populated(pg_cluster, "bench_dataset_tiny", TINY)
    try:
        with services.engine.connect() as conn:
            counts = {
                t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
                for t in ("settlements", "visits", "fee_details", "request_keys", "benefit_usage")
            }
            dataset_settlements = conn.execute(
                text("SELECT count(*) FROM settlements WHERE person_id >= :b"),
                {"b": dataset.BASE_ID},
            ).scalar_one()
            credited = conn.execute(
                text(
                    "SELECT count(*) FROM ia_credit_claims c JOIN contribution_lines l "
                    "ON l.id = c.line_id WHERE l.person_id >= :b"
                ),
                {"b": dataset.BASE_ID},
            ).scalar_one()
            balances = conn.execute(
                text(
                    "SELECT min(balance), max(balance) FROM ledger_accounts "
                    "WHERE kind = 'individual' AND person_id >= :b"
                ),
                {"b": dataset.BASE_ID},
            ).one()
            audited = conn.execute(
                text("SELECT count(*) FROM audit_log WHERE action = 'his.settlement'")
            ).scalar_one()
        assert dataset_settlements == 600
        assert counts["benefit_usage"] >= 200
        assert credited == 200 * 12
        assert audited >= 600
        # twelve credits in, three settlements out, the same for everyone
        assert balances[0] == balances[1] > 0
        checked = ledger.verify(services.uow())
        assert checked.ok, checked.problems[:5]
        verified = audit.verify(services.uow())
        assert verified.ok, verified.problems[:5]
        assert verified.entries >= 600 * 3
        # a benchmark run's fresh visits: registered, for persons of the data set
        work = dataset.fresh_visits(url, TINY, 10, run=0)
        assert len({w["psn_no"] for w in work}) == 10
        with services.engine.connect() as conn:
            open_visits = conn.execute(
                text(
                    "SELECT count(*) FROM visits WHERE status = 'registered' AND mdtrt_id LIKE 'RUN0V%'"
                )
            ).scalar_one()
        assert open_visits == 10
    finally:
        services.close()


@needs_postgresql
def test_kept_data_set_is_built_once_and_started_again() -> None:
    """The build keeps its cluster's data directory under its key; asked
    again with the same parameters it starts that one, and what a
    benchmark writes there stays for the next start."""
    params = dataset.Params(persons=30, settlements=2, seed=3)
    # a folder the postgres user can reach (pytest's tmp_path is root's alone)
    root = Path(tempfile.mkdtemp(prefix="yibao-dataset-test-"))
    root.chmod(0o755)
    try:
        where = dataset.build(params, root, now=START)
        assert where == dataset.folder(params, root)
        assert (where / "READY").exists()
        built = json.loads((where / "dataset.json").read_text())
        assert built["key"] == dataset.reuse_key(params)
        with dataset.running(params, root=root) as (_, url):
            work = dataset.fresh_visits(url, params, 5, run=dataset.next_run(where))
            engine = create_engine(url)
            with engine.connect() as conn:
                persons = conn.execute(
                    text("SELECT count(*) FROM persons WHERE id >= :b"), {"b": dataset.BASE_ID}
                ).scalar_one()
            engine.dispose()
        assert persons == 30
        assert dataset.build(params, root) == where  # not built again
        assert json.loads((where / "dataset.json").read_text()) == built
        with dataset.running(params, root=root) as (_, url):
            engine = create_engine(url)
            with engine.connect() as conn:
                kept = conn.execute(
                    text("SELECT count(*) FROM visits WHERE mdtrt_id = :m"),
                    {"m": work[0]["mdtrt_id"]},
                ).scalar_one()
            engine.dispose()
        assert kept == 1
        assert dataset.next_run(where) == 1
    finally:
        shutil.rmtree(root, ignore_errors=True)


@needs_postgresql
def test_the_monthly_credit_check_on_a_data_set(pg_cluster: PgCluster) -> None:
    """``bench.contributions_post --dataset`` checks the month it credited,
    set-based: not yet credited is a problem, credited once is not."""
    from bench import contributions_post

    params = dataset.Params(persons=40, settlements=1, seed=5)
    _, services = _populated(pg_cluster, "bench_dataset_month", params)
    try:
        month = contributions_post.next_month_on_dataset(services, params.persons)
        ok, problems = contributions_post.month_check(services.engine, month, params.persons)
        assert not ok and "0 claimed" in problems[0]
        posted = contributions_post.contributions.post_month(
            services.engine, month=month, now=START, backend=services.backend
        )
        assert posted.persons == params.persons
        ok, problems = contributions_post.month_check(services.engine, month, params.persons)
        assert ok, problems
    finally:
        services.close()


def test_pg_settings_from_the_command_line() -> None:
    assert dataset.pg_settings(["shared_buffers=6GB", " work_mem = 64MB "]) == {
        "shared_buffers": "6GB",
        "work_mem": "64MB",
    }
    with pytest.raises(SystemExit, match="NAME=VALUE"):
        dataset.pg_settings(["shared_buffers"])
