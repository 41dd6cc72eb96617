"""bench.inquiry end to end at a tiny size: each channel's client against a
live ``yibao serve``, so that a broken benchmark is seen in the test run."""

from __future__ import annotations

import subprocess

import pytest

from bench import inquiry


@pytest.fixture
def served(db_url: str):  # type: ignore[no-untyped-def]
    """Six bench persons on an empty migrated database, and a server on it."""
    fixture = inquiry.load(db_url, 6, 2)
    server, port = inquiry.serve(db_url, 1, access_log=False)
    try:
        yield fixture, port
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()


def test_load_makes_numbers_a_keypad_and_the_checks_accept() -> None:
    from yibao.domain import ids

    for i in (0, 499, 500, 12_345):
        assert ids.parse_resident_id(inquiry.certno(i)).birth_place == "330502"
        assert ids.is_card_no(inquiry.card_no(i))
    assert len({inquiry.certno(i) for i in range(2_000)}) == 2_000


def test_each_channel_answers_the_balance_and_audits_it(served, db_url) -> None:  # type: ignore[no-untyped-def]
    """One load and one server for the five channels (each a few seconds to
    set up): each channel's two clients prepare (log in, read the card,
    dial) and inquire once; every answer is checked for the balance inside
    the client, and every balance read left its audit entry."""
    fixture, port = served
    for channel in inquiry.CHANNELS:
        before = inquiry.audited(db_url)
        result = inquiry.run(port, fixture, channel, 2, 0, count=1)
        assert (channel, result["errors"], result["first_error"]) == (channel, 0, "")
        assert (channel, result["inquiries"]) == (channel, 2)
        wrote = inquiry.audit_of(channel, before, inquiry.audited(db_url))
        assert (channel, inquiry.inquiries_audited(channel, wrote)) == (
            channel,
            2 + result["prepared_reads"],
        )
