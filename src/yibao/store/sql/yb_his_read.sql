-- Everything 1101 and 2207 are decided from on the fast path
-- (services/settlement/fast_path.py), in one call and one snapshot: the
-- institution with its nonce and sign-in, the card presented (with whether a
-- reissue replaced it) or the person of the ID number, the person, the
-- enrolments, the balance, and for 2207 the visit, its fee details, the
-- year's usage and the candidate benefit policies, and whether a bound family
-- payer may pay for the person (family mutual aid is settled on the general
-- path alone). NULL when the access id is unknown; the caller checks the rest
-- with the same rules as the general path (domain.use, domain.settlement).
-- It only reads.
CREATE FUNCTION yb_his_read(
    p_access text, p_sign_no text, p_nonce text, p_cert_type text, p_cert_no text,
    p_mdtrt_id text
) RETURNS json LANGUAGE plpgsql STABLE SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    v_out json;
    v_pid bigint;
    v_card json;
    v_visit json;
    v_visit_id bigint;
    v_year int;
BEGIN
    SELECT json_build_object(
        'id', i.id, 'code', i.code, 'name', i.name, 'kind', i.kind, 'level', i.level,
        'division_code', i.division_code, 'access_secret', i.access_secret,
        'require_body_signature', i.require_body_signature, 'status', i.status,
        'nonce_used', EXISTS (SELECT 1 FROM his_nonces n
                              WHERE n.access_id = p_access AND n.nonce = p_nonce),
        'signed_in', EXISTS (SELECT 1 FROM his_sign_ins s WHERE s.sign_no = p_sign_no
                             AND s.institution_code = i.code AND s.signed_out_at IS NULL))
        INTO v_out FROM institutions i WHERE i.access_id = p_access;
    IF v_out IS NULL THEN
        RETURN NULL;
    END IF;
    IF p_cert_type = '03' THEN
        SELECT json_build_object(
                   'card_no', c.card_no, 'status', c.status, 'person_id', c.person_id,
                   -- only a cancelled card can have been replaced; its holder's
                   -- cards are found by the person's index
                   'replaced', c.status = 'cancelled' AND EXISTS (
                       SELECT 1 FROM cards r
                       WHERE r.person_id = c.person_id AND r.replaces_card_id = c.id)),
               c.person_id
            INTO v_card, v_pid FROM cards c WHERE c.card_no = p_cert_no;
    ELSIF p_cert_type = '02' THEN
        SELECT p.id INTO v_pid FROM persons p WHERE p.certno = upper(p_cert_no);
    END IF;
    IF p_mdtrt_id IS NOT NULL THEN
        SELECT json_build_object(
                   'id', v.id, 'mdtrt_id', v.mdtrt_id, 'person_id', v.person_id,
                   'institution_code', v.institution_code, 'insutype', v.insutype,
                   'med_type', v.med_type, 'status', v.status, 'cash_fallback', v.cash_fallback,
                   'day', to_char(v.begntime AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM-DD')),
               v.id, extract(year FROM v.begntime AT TIME ZONE 'Asia/Shanghai')
            INTO v_visit, v_visit_id, v_year FROM visits v WHERE v.mdtrt_id = p_mdtrt_id;
    END IF;
    RETURN json_build_object(
        'inst', v_out,
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
        'balance', (SELECT a.balance FROM ledger_accounts a WHERE a.code = 'IA:' || v_pid),
        'family', EXISTS (SELECT 1 FROM family_bindings b
                          WHERE b.relative_id = v_pid AND b.status = 'active'),
        'visit', v_visit,
        'fees', (SELECT coalesce(json_agg(json_build_array(f.amount, f.category, f.selfpay_bp)
                                          ORDER BY f.id), '[]')
                 FROM fee_details f WHERE f.visit_id = v_visit_id AND f.status = 'active'),
        'usage', (SELECT coalesce(json_agg(json_build_array(u.insutype, u.deductible_used,
                                                            u.fund_used)), '[]')
                  FROM benefit_usage u WHERE u.person_id = v_pid AND u.year = v_year),
        'policies', (SELECT coalesce(json_agg(json_build_array(b.insutype, b.area, b.year,
                                                               b.deductible, b.fund_cap,
                                                               b.ratios)), '[]')
                     FROM benefit_policies b
                     WHERE b.year = v_year AND b.insutype IN (
                         SELECT e.insutype FROM enrolments e WHERE e.person_id = v_pid)
                       AND b.area IN (SELECT unnest(ARRAY[e.area, left(e.area, 4) || '00',
                                                          left(e.area, 2) || '0000'])
                                      FROM enrolments e WHERE e.person_id = v_pid))
    );
END;
$$;
