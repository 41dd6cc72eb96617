-- 1101 on the fast path when the institution is read afresh
-- (services/settlement/fast_path.py): the nonce claimed and the read
-- audited, 1101's one write. False, having written nothing, when the nonce
-- was used.
CREATE FUNCTION yb_his_touch(
    p_access text, p_nonce text, p_at timestamptz,
    p_chain int, p_actor_kind text, p_actor_id text, p_actor_division text,
    p_channel text, p_action text, p_person bigint, p_subject text, p_detail text,
    p_ikey bytea, p_okey bytea
) RETURNS boolean LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    v_claim bigint;
BEGIN
    INSERT INTO his_nonces (access_id, nonce, at) VALUES (p_access, p_nonce, p_at)
        ON CONFLICT DO NOTHING RETURNING id INTO v_claim;
    IF v_claim IS NULL THEN
        RETURN false;
    END IF;
    PERFORM yb_audit_append(p_chain, p_at, p_actor_kind, p_actor_id, p_actor_division,
                            p_channel, p_action, p_person, p_subject, p_detail, p_ikey, p_okey);
    RETURN true;
END;
$$;
