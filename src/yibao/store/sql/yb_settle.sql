-- A settlement's write on PostgreSQL (services/ledger/backends.py,
-- ``settle_sql``; the other implementation, ``settle_orm``, writes the same
-- rows through the ledger's posting function): one server-side call where
-- the ORM takes a dozen statements.
--
-- It writes only if what the decision was made from still holds, and
-- raises 'yb:stale' otherwise, so that the caller's rollback (a savepoint on
-- the general path, the whole call on the fast path) undoes the writes
-- before it and the caller decides again:
--   the visit is still open, closed by one guarded UPDATE;
--   the year's usage is as seen, moved by one guarded upsert;
--   no balance goes below zero: one guarded UPDATE whose row count is the check;
--   the individual account's balance before this entry is the one seen.
-- Row locks in a fixed order (the entry's key, the visit, the usage row,
-- the ledger accounts by ascending id, as services/ledger/ledger.py), so
-- that concurrent settlements queue instead of deadlocking.
--
-- Answers the new ledger entry's id, or NULL when the key was used (the
-- entry exists, nothing is written). Every statement is a lookup by a unique
-- key or an insert: generic plans (re-planning each call had been a third of
-- PostgreSQL's time under the settlement benchmark).
CREATE FUNCTION yb_settle(
    p_key text, p_kind text, p_person bigint, p_memo text, p_at timestamptz,
    p_codes text[], p_kinds text[], p_amounts bigint[], p_pids bigint[], p_areas text[],
    p_visit bigint, p_insutype text, p_year int, p_ded_seen bigint, p_fund_seen bigint,
    p_balance_seen bigint, p_setl json
) RETURNS bigint LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    v_entry bigint;
    v_moved int;
    v_balance bigint;
    v_inserted boolean;
BEGIN
    INSERT INTO ledger_entries (idem_key, kind, person_id, memo, at, result)
        VALUES (p_key, p_kind, p_person, left(p_memo, 200), p_at, '{}')
        ON CONFLICT (idem_key) DO NOTHING RETURNING id INTO v_entry;
    IF v_entry IS NULL THEN
        RETURN NULL;
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
            WHERE u.deductible_used = p_ded_seen AND u.fund_used = p_fund_seen
        RETURNING (xmax = 0) INTO v_inserted;  -- a new row has no xmax
    -- a first row only where the decision saw none, an update only of what it saw
    IF NOT FOUND OR (v_inserted AND (p_ded_seen <> 0 OR p_fund_seen <> 0)) THEN
        RAISE EXCEPTION 'yb:stale' USING DETAIL = 'the year''s usage moved';
    END IF;
    -- the accounts locked by ascending id; those missing (an institution's or
    -- a fund's first entry) are made first, and all of them locked again
    PERFORM 1 FROM ledger_accounts WHERE code = ANY(p_codes) ORDER BY id FOR UPDATE;
    GET DIAGNOSTICS v_moved = ROW_COUNT;
    IF v_moved < cardinality(p_codes) THEN
        INSERT INTO ledger_accounts (code, kind, person_id, area, balance, allow_negative,
                                     created_at)
            SELECT c, k, pid, a, 0, k NOT IN ('individual', 'payable_person', 'payable_heirs',
                                              'payable_area', 'ia_pending'), p_at
            FROM unnest(p_codes, p_kinds, p_pids, p_areas) AS l(c, k, pid, a)
            ON CONFLICT (code) DO NOTHING;
        PERFORM 1 FROM ledger_accounts WHERE code = ANY(p_codes) ORDER BY id FOR UPDATE;
    END IF;
    -- the balances moved, the postings written in the entry's order and the
    -- individual account's balance before this entry read back: one statement
    WITH moved AS (
        UPDATE ledger_accounts acc SET balance = acc.balance + l.amt
            FROM unnest(p_codes, p_amounts, p_pids) WITH ORDINALITY AS l(c, amt, pid, n)
            WHERE acc.code = l.c AND (acc.allow_negative OR acc.balance + l.amt >= 0)
            RETURNING acc.id, acc.code, acc.balance - l.amt AS before, l.amt, l.pid, l.n
    ), posted AS (
        INSERT INTO ledger_postings (entry_id, account_id, person_id, amount, at)
            SELECT v_entry, m.id, m.pid, m.amt, p_at FROM moved m ORDER BY m.n
    )
    SELECT count(*), max(m.before) FILTER (WHERE m.code = 'IA:' || p_person)
        INTO v_moved, v_balance FROM moved m;
    IF v_moved <> cardinality(p_codes) THEN
        RAISE EXCEPTION 'yb:stale' USING DETAIL = 'a balance would go below zero';
    END IF;
    -- the balance before this entry, as the decision saw it (the account is
    -- read alone when this entry does not post to it)
    IF v_balance IS NULL THEN
        v_balance := coalesce((SELECT balance FROM ledger_accounts WHERE code = 'IA:' || p_person),
                              0);
    END IF;
    IF v_balance <> p_balance_seen THEN
        RAISE EXCEPTION 'yb:stale' USING DETAIL = 'the balance moved';
    END IF;
    INSERT INTO settlements (setl_id, person_id, institution_code, visit_id, mdtrt_id, msgid,
                             kind, insutype, psn_type, med_type, year, setl_time,
                             medfee_sumamt, fulamt_ownpay_amt, preselfpay_amt, inscp_scp_amt,
                             act_pay_dedc, hifp_pay, fund_pay_sumamt, psn_part_amt, acct_pay,
                             psn_cash_pay, balc, refund_owed, status, entry_id)
        SELECT setl_id, person_id, institution_code, visit_id, mdtrt_id, msgid,
               kind, insutype, psn_type, med_type, year, setl_time,
               medfee_sumamt, fulamt_ownpay_amt, preselfpay_amt, inscp_scp_amt,
               act_pay_dedc, hifp_pay, fund_pay_sumamt, psn_part_amt, acct_pay,
               psn_cash_pay, balc, refund_owed, status, v_entry
        FROM json_populate_record(NULL::settlements, p_setl);
    RETURN v_entry;
END;
$$;
