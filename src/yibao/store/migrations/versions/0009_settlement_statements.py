"""Settlement functions: generic plans, fewer statements

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23 12:10:00

Measured under the settlement benchmark (issue 4), PostgreSQL spent a third
of its time planning: PL/pgSQL plans each statement of a function with the
call's values ("custom plans") unless the generic plan looks no dearer, and
for these statements it never did. Every statement here is a lookup by a
unique key or an insert, so the generic plan is the right one:
``plan_cache_mode = force_generic_plan`` on every function.

Third, ``yb_his_person`` answers 1101 in one call where it took two.

Second, each statement a function runs costs its executor set-up, whatever
it does. ``yb_settle`` goes from 13 statements to 8 and ``yb_audit_append``
from 4 to 1:

- the ledger entry is inserted first, so that a used key answers 'replay'
  before anything is written;
- the visit is closed by one guarded UPDATE, and the year's usage moved by
  one guarded upsert, instead of a locking read, a check and a write each;
- the balances move by one guarded UPDATE whose row count is the check;
- the audit chain head is locked, advanced and the entry written in one
  statement.

A check that fails after the first write raises ``yb:stale`` instead of
answering 'stale', so that the caller's rollback (a savepoint on the general
path, the whole call on the fast path) undoes the writes before it.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GENERIC = "SET plan_cache_mode = force_generic_plan"

SETTLEMENT_COLUMNS = (
    "setl_id, person_id, institution_code, visit_id, mdtrt_id, msgid, kind, insutype, "
    "psn_type, med_type, year, setl_time, medfee_sumamt, fulamt_ownpay_amt, preselfpay_amt, "
    "inscp_scp_amt, act_pay_dedc, hifp_pay, fund_pay_sumamt, psn_part_amt, acct_pay, "
    "psn_cash_pay, balc, refund_owed, status"
)

# The head is locked (FOR UPDATE follows a concurrent update to the newest
# version under READ COMMITTED), the next hash computed from it, the head
# moved and the entry written: one statement. A chain's first entry creates
# its head and goes round once more.
YB_AUDIT_APPEND = f"""
CREATE OR REPLACE FUNCTION yb_audit_append(
    p_chain int, p_at timestamptz, p_actor_kind text, p_actor_id text, p_actor_division text,
    p_channel text, p_action text, p_person bigint, p_subject text, p_detail text, p_tail text
) RETURNS void LANGUAGE plpgsql {GENERIC} AS $$
BEGIN
    FOR i IN 1..2 LOOP
        WITH head AS (
            SELECT seq + 1 AS seq, hash AS prev FROM audit_chain_heads
            WHERE chain = p_chain FOR UPDATE
        ), entry AS (
            SELECT seq, prev, encode(sha256(convert_to(
                prev || '[' || p_chain || ',' || seq || ',' || substr(p_tail, 2), 'UTF8')),
                'hex') AS hash
            FROM head
        ), moved AS (
            UPDATE audit_chain_heads h SET seq = e.seq, hash = e.hash FROM entry e
            WHERE h.chain = p_chain RETURNING e.seq, e.prev, e.hash
        )
        INSERT INTO audit_log (chain, seq, at, actor_kind, actor_id, actor_division, channel,
                               action, person_id, subject, detail, prev_hash, hash)
            SELECT p_chain, m.seq, p_at, p_actor_kind, p_actor_id, p_actor_division, p_channel,
                   p_action, p_person, p_subject, p_detail::json, m.prev, m.hash
            FROM moved m;
        IF FOUND THEN
            RETURN;
        END IF;
        INSERT INTO audit_chain_heads (chain, seq, hash) VALUES (p_chain, 0, repeat('0', 64))
            ON CONFLICT DO NOTHING;
    END LOOP;
    RAISE EXCEPTION 'yb:audit chain % has no head', p_chain;
END;
$$;
"""  # noqa: S608 - GENERIC is a constant, not input

# Arguments and answers as in migration 0005: 'ok' or 'replay'; what 0005
# answered 'stale' now raises 'yb:stale'. Row locks in the same order as
# before: the visit, the person's usage row, the ledger accounts by id.
YB_SETTLE = f"""
CREATE OR REPLACE FUNCTION yb_settle(
    p_key text, p_kind text, p_person bigint, p_memo text, p_result json, p_at timestamptz,
    p_codes text[], p_kinds text[], p_amounts bigint[], p_pids bigint[], p_areas text[],
    p_visit bigint, p_insutype text, p_year int, p_ded_seen bigint, p_fund_seen bigint,
    p_setl json
) RETURNS text LANGUAGE plpgsql {GENERIC} AS $$
DECLARE
    v_entry bigint;
    v_moved int;
BEGIN
    INSERT INTO ledger_entries (idem_key, kind, person_id, memo, at, result)
        VALUES (p_key, p_kind, p_person, left(p_memo, 200), p_at, p_result)
        ON CONFLICT (idem_key) DO NOTHING RETURNING id INTO v_entry;
    IF v_entry IS NULL THEN
        RETURN 'replay';
    END IF;
    UPDATE visits SET status = 'settled' WHERE id = p_visit AND status = 'registered';
    IF NOT FOUND THEN
        RAISE EXCEPTION 'yb:stale' USING DETAIL = 'the visit is no longer open';
    END IF;
    INSERT INTO benefit_usage AS u (person_id, insutype, year, deductible_used, fund_used)
        VALUES (p_person, p_insutype, p_year,
                p_ded_seen + (p_setl->>'act_pay_dedc')::bigint,
                p_fund_seen + (p_setl->>'hifp_pay')::bigint)
        ON CONFLICT (person_id, insutype, year) DO UPDATE
            SET deductible_used = excluded.deductible_used, fund_used = excluded.fund_used
            WHERE u.deductible_used = p_ded_seen AND u.fund_used = p_fund_seen;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'yb:stale' USING DETAIL = 'the year''s usage moved';
    END IF;
    INSERT INTO ledger_accounts (code, kind, person_id, area, balance, allow_negative, created_at)
        SELECT c, k, pid, a, 0, k NOT IN ('individual', 'payable_person', 'payable_heirs',
                                          'payable_area', 'ia_pending'), p_at
        FROM unnest(p_codes, p_kinds, p_pids, p_areas) AS l(c, k, pid, a)
        ON CONFLICT (code) DO NOTHING;
    PERFORM 1 FROM ledger_accounts WHERE code = ANY(p_codes) ORDER BY id FOR UPDATE;
    UPDATE ledger_accounts acc SET balance = acc.balance + l.amt
        FROM unnest(p_codes, p_amounts) AS l(c, amt)
        WHERE acc.code = l.c AND (acc.allow_negative OR acc.balance + l.amt >= 0);
    GET DIAGNOSTICS v_moved = ROW_COUNT;
    IF v_moved <> cardinality(p_codes) THEN
        RAISE EXCEPTION 'yb:stale' USING DETAIL = 'a balance would go below zero';
    END IF;
    INSERT INTO ledger_postings (entry_id, account_id, person_id, amount, at)
        SELECT v_entry, acc.id, l.pid, l.amt, p_at
        FROM unnest(p_codes, p_amounts, p_pids) WITH ORDINALITY AS l(c, amt, pid, n)
        JOIN ledger_accounts acc ON acc.code = l.c ORDER BY l.n;
    INSERT INTO settlements ({SETTLEMENT_COLUMNS}, entry_id)
        SELECT {SETTLEMENT_COLUMNS}, v_entry FROM json_populate_record(NULL::settlements, p_setl);
    RETURN 'ok';
END;
$$;
"""  # noqa: S608 - the column names are constants, not input

# As in 0008, with 0009's yb_settle: a replayed key raises too.
YB_HIS_SETTLE = f"""
CREATE OR REPLACE FUNCTION yb_his_settle(
    p_access text, p_nonce text, p_balance_seen bigint,
    p_key text, p_kind text, p_person bigint, p_memo text, p_result json, p_at timestamptz,
    p_codes text[], p_kinds text[], p_amounts bigint[], p_pids bigint[], p_areas text[],
    p_visit bigint, p_insutype text, p_year int, p_ded_seen bigint, p_fund_seen bigint,
    p_setl json,
    p_chain int, p_actor_kind text, p_actor_id text, p_actor_division text,
    p_channel text, p_action text, p_subject text, p_detail text, p_tail text
) RETURNS text LANGUAGE plpgsql {GENERIC} AS $$
DECLARE
    v_claim bigint;
    v_status text;
    v_balance bigint;
BEGIN
    INSERT INTO his_nonces (access_id, nonce, at) VALUES (p_access, p_nonce, p_at)
        ON CONFLICT DO NOTHING RETURNING id INTO v_claim;
    IF v_claim IS NULL THEN
        RAISE EXCEPTION 'yb:replay_nonce';
    END IF;
    v_status := yb_settle(p_key, p_kind, p_person, p_memo, p_result, p_at, p_codes, p_kinds,
                          p_amounts, p_pids, p_areas, p_visit, p_insutype, p_year, p_ded_seen,
                          p_fund_seen, p_setl);
    IF v_status <> 'ok' THEN
        RAISE EXCEPTION 'yb:%', v_status;
    END IF;
    -- the balance before this settlement, as the split saw it
    SELECT coalesce((SELECT balance FROM ledger_accounts WHERE code = 'IA:' || p_person), 0)
           - coalesce((SELECT l.amt FROM unnest(p_codes, p_amounts) AS l(c, amt)
                       WHERE l.c = 'IA:' || p_person), 0)
        INTO v_balance;
    IF v_balance <> p_balance_seen THEN
        RAISE EXCEPTION 'yb:stale' USING DETAIL = 'the balance moved';
    END IF;
    PERFORM yb_audit_append(p_chain, p_at, p_actor_kind, p_actor_id, p_actor_division,
                            p_channel, p_action, p_person, p_subject, p_detail, p_tail);
    RETURN 'ok';
END;
$$;
"""  # noqa: S608 - GENERIC is a constant, not input

# 1101 in one call (services/his_fast.py, ``_person_info_once``): the caller
# checked the request's signature against the institution as it last read
# it; NULL, having written nothing, unless that institution (secret, body
# signature rule, status, code) and its sign-in are still so and the nonce is
# new. Then the nonce is claimed, the read audited about the person the
# certificate names (the hashed payload is completed around the person id,
# ``domain.audit.tail_around_person``) and what yb_his_read would send for
# 1101 is the answer. The card's and person's checks are the caller's.
# The person's part repeats yb_his_read's: a shared function measured 12 %
# fewer settlements per second (a SQL function's body is planned at every
# call; a PL/pgSQL one is a call more), and the tests hold both to the
# general path's answer (tests/his/test_his_fast_path.py).
YB_HIS_PERSON = f"""
CREATE OR REPLACE FUNCTION yb_his_person(
    p_access text, p_secret text, p_body_sig boolean, p_code text, p_sign_no text,
    p_nonce text, p_cert_type text, p_cert_no text, p_at timestamptz, p_chains int,
    p_actor_kind text, p_actor_id text, p_actor_division text, p_channel text, p_action text,
    p_subject text, p_detail text, p_tail_head text, p_tail_rest text
) RETURNS json LANGUAGE plpgsql {GENERIC} AS $$
DECLARE
    v_claim bigint;
    v_pid bigint;
    v_card json;
BEGIN
    INSERT INTO his_nonces (access_id, nonce, at)
        SELECT p_access, p_nonce, p_at FROM institutions i
        WHERE i.access_id = p_access AND i.access_secret = p_secret
          AND i.require_body_signature = p_body_sig AND i.status = 'active' AND i.code = p_code
          AND EXISTS (SELECT 1 FROM his_sign_ins s WHERE s.sign_no = p_sign_no
                      AND s.institution_code = i.code AND s.signed_out_at IS NULL)
        ON CONFLICT DO NOTHING RETURNING id INTO v_claim;
    IF v_claim IS NULL THEN
        RETURN NULL;  -- the institution or its sign-in changed, or a replayed nonce
    END IF;
    IF p_cert_type = '03' THEN
        SELECT json_build_object('status', c.status, 'person_id', c.person_id), c.person_id
            INTO v_card, v_pid FROM cards c WHERE c.card_no = p_cert_no;
    ELSE
        SELECT p.id INTO v_pid FROM persons p WHERE p.certno = upper(p_cert_no);
    END IF;
    IF v_pid IS NOT NULL THEN
        PERFORM yb_audit_append((v_pid % p_chains)::int, p_at, p_actor_kind, p_actor_id,
                                p_actor_division, p_channel, p_action, v_pid, p_subject,
                                p_detail, p_tail_head || v_pid || p_tail_rest);
    END IF;
    RETURN json_build_object(
        'card', v_card,
        'person', (SELECT json_build_object(
                       'id', p.id, 'certno', p.certno, 'name', p.name, 'gender', p.gender,
                       'birth_date', p.birth_date, 'status', p.status)
                   FROM persons p WHERE p.id = v_pid),
        'enrolments', (SELECT coalesce(json_agg(json_build_object(
                           'id', e.id, 'insutype', e.insutype, 'psn_type', e.psn_type,
                           'area', e.area, 'status', e.status, 'start_date', e.start_date,
                           'suspended_since', e.suspended_since, 'employer_id', e.employer_id,
                           'emp_name', coalesce(emp.name, '')) ORDER BY e.id), '[]')
                       FROM enrolments e LEFT JOIN employers emp ON emp.id = e.employer_id
                       WHERE e.person_id = v_pid),
        'balance', (SELECT a.balance FROM ledger_accounts a WHERE a.code = 'IA:' || v_pid)
    );
END;
$$;
"""  # noqa: S608 - GENERIC is a constant, not input

# Unchanged bodies (0008), with generic plans.
OTHERS = (
    "yb_his_read(text, text, text, text, text, text)",
    "yb_his_touch(text, text, timestamptz, int, text, text, text, text, text, bigint, text, "
    "text, text)",
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for ddl in (YB_AUDIT_APPEND, YB_SETTLE, YB_HIS_SETTLE, YB_HIS_PERSON):
            op.execute(ddl)
        for signature in OTHERS:
            op.execute(f"ALTER FUNCTION {signature} {GENERIC}")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        from importlib import import_module

        m5 = import_module("yibao.store.migrations.versions.0005_settlement")
        m8 = import_module("yibao.store.migrations.versions.0008_his_fast_path")
        op.execute("DROP FUNCTION IF EXISTS yb_his_person")
        for ddl in (m8.YB_AUDIT_APPEND, m5.YB_SETTLE, m8.YB_HIS_SETTLE):
            op.execute(ddl)
        for signature in OTHERS:
            op.execute(f"ALTER FUNCTION {signature} RESET plan_cache_mode")
