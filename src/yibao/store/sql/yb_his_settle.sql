-- 2207 in one transaction on the fast path (services/settlement/fast_path.py):
-- the nonce claimed, the request's key claimed with its answer (as
-- services/idempotency.py claims it on the general path), the settlement
-- written by yb_settle with every check of what the decision was made from,
-- the ledger entry's audit record (``p_l_*``, services/ledger/writes.py
-- ``his_settle_audit``; the general path's unit of work appends the same)
-- and the settlement's. Any outcome but a written settlement raises, so that
-- nothing of it stays: 'yb:replay' (the nonce, the request's key or the
-- ledger's was used: the general path answers it), or yb_settle's
-- 'yb:stale'. A concurrent send of the same msgid waits on the request key's
-- unique index until this one ends.
--
-- Fewer statements than one per step (issue 18): the nonce and the request's
-- key are claimed by one statement, and the two audit entries are appended
-- by one, under one lock and one move of the chain's head, as
-- yb_audit_append appends one (the same link, entry after entry).
CREATE FUNCTION yb_his_settle(
    p_access text, p_nonce text, p_scope text, p_request text, p_fingerprint text,
    p_result json,
    p_key text, p_kind text, p_person bigint, p_memo text, p_at timestamptz,
    p_codes text[], p_kinds text[], p_amounts bigint[], p_pids bigint[], p_areas text[],
    p_visit bigint, p_insutype text, p_year int, p_ded_seen bigint, p_fund_seen bigint,
    p_balance_seen bigint, p_setl json,
    p_chain int, p_actor_kind text, p_actor_id text, p_actor_division text,
    p_channel text, p_action text, p_subject text, p_detail text, p_ikey bytea, p_okey bytea,
    p_l_actor_kind text, p_l_actor_id text, p_l_actor_division text, p_l_channel text,
    p_l_action text, p_l_subject text, p_l_detail text, p_l_ikey bytea, p_l_okey bytea
) RETURNS bigint LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    v_claim bigint;
    v_entry bigint;
    v_person text := coalesce(p_person::text, 'null');  -- as yb_audit_append links it
BEGIN
    WITH nonce AS (
        INSERT INTO his_nonces (access_id, nonce, at) VALUES (p_access, p_nonce, p_at)
            ON CONFLICT DO NOTHING RETURNING id
    )
    INSERT INTO request_keys (scope, key, fingerprint, output, at)
        SELECT p_scope, p_request, p_fingerprint, p_result, p_at FROM nonce
        ON CONFLICT (scope, key) DO NOTHING RETURNING id INTO v_claim;
    IF v_claim IS NULL THEN
        RAISE EXCEPTION 'yb:replay';  -- the nonce or the request's key was used
    END IF;
    v_entry := yb_settle(p_key, p_kind, p_person, p_memo, p_at, p_codes, p_kinds, p_amounts,
                         p_pids, p_areas, p_visit, p_insutype, p_year, p_ded_seen, p_fund_seen,
                         p_balance_seen, p_setl);
    IF v_entry IS NULL THEN
        RAISE EXCEPTION 'yb:replay';
    END IF;
    -- both about the person, on the person's chain: the ledger entry's first,
    -- in the order the general path appends them
    FOR i IN 1..2 LOOP
        WITH head AS (
            SELECT seq, hash FROM audit_chain_heads WHERE chain = p_chain FOR UPDATE
        ), e1 AS (
            SELECT seq + 1 AS seq, hash AS prev, encode(sha256(p_l_okey || sha256(p_l_ikey
                || convert_to(hash || '[' || p_chain || ',' || (seq + 1) || ',' || v_person
                              || ']', 'UTF8'))), 'hex') AS hash
            FROM head
        ), second AS (
            SELECT f.seq + 1 AS seq, f.hash AS prev, encode(sha256(p_okey || sha256(p_ikey
                || convert_to(f.hash || '[' || p_chain || ',' || (f.seq + 1) || ',' || v_person
                              || ']', 'UTF8'))), 'hex') AS hash
            FROM e1 f
        ), moved AS (
            UPDATE audit_chain_heads h SET seq = s.seq, hash = s.hash FROM second s
            WHERE h.chain = p_chain RETURNING s.seq
        )
        INSERT INTO audit_log (chain, seq, at, actor_kind, actor_id, actor_division, channel,
                               action, person_id, subject, detail, prev_hash, hash)
            SELECT p_chain, f.seq, p_at, p_l_actor_kind, p_l_actor_id, p_l_actor_division,
                   p_l_channel, p_l_action, p_person, p_l_subject, p_l_detail::json, f.prev,
                   f.hash
            FROM e1 f, moved
            UNION ALL
            SELECT p_chain, s.seq, p_at, p_actor_kind, p_actor_id, p_actor_division,
                   p_channel, p_action, p_person, p_subject, p_detail::json, s.prev, s.hash
            FROM second s, moved;
        IF FOUND THEN
            RETURN v_entry;
        END IF;
        -- the chain's first entry: its head is made, and once more
        INSERT INTO audit_chain_heads (chain, seq, hash) VALUES (p_chain, 0, repeat('0', 64))
            ON CONFLICT DO NOTHING;
    END LOOP;
    RAISE EXCEPTION 'yb:audit chain % has no head', p_chain;
END;
$$;
