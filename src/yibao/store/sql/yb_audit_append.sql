-- ``store/auditlog.append`` for one record, for the server-side functions
-- (yb_his_touch, yb_his_person, yb_his_settle): the writer sends the record
-- and HMAC's inner and outer keys of its secret (``domain.audit.AuditKey.pads``:
-- a secret of this one entry, keyed with the audit key the database never
-- sees), and the function completes the entry's link under the chain head's
-- lock, HMAC(secret, prev || '[chain,seq,person]') with SHA-256 alone, so
-- that ``yibao audit verify`` checks both alike (migration 0015).
--
-- The head is locked (FOR UPDATE follows a concurrent update to the newest
-- version under READ COMMITTED), the next hash computed from it, the head
-- moved and the entry written: one statement. A chain's first entry creates
-- its head and goes round once more.
CREATE FUNCTION yb_audit_append(
    p_chain int, p_at timestamptz, p_actor_kind text, p_actor_id text, p_actor_division text,
    p_channel text, p_action text, p_person bigint, p_subject text, p_detail text,
    p_ikey bytea, p_okey bytea
) RETURNS void LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
BEGIN
    FOR i IN 1..2 LOOP
        WITH head AS (
            SELECT seq + 1 AS seq, hash AS prev FROM audit_chain_heads
            WHERE chain = p_chain FOR UPDATE
        ), entry AS (
            SELECT seq, prev, encode(sha256(p_okey || sha256(p_ikey || convert_to(
                prev || '[' || p_chain || ',' || seq || ',' || coalesce(p_person::text, 'null')
                || ']', 'UTF8'))), 'hex') AS hash
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
