"""HIS fast path on PostgreSQL

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23 09:40:00

Server-side functions for the settlement channel's PostgreSQL fast path
(``services/his_fast.py``): 1101 in two round trips and 2207 in two, where
the general path takes a dozen statements each. They decide nothing the
Python rules do not also decide: ``yb_his_read`` only reads, and the writing
functions re-check under row locks what the answer was computed from, raising
(and so rolling back every write, the nonce claim included) when it changed.

``yb_audit_append`` is ``store/auditlog.append`` for one record: the writer
sends the hashed payload after chain and sequence number
(``domain.audit.AuditRecord.tail``), the function completes the hash under the
chain head's lock, so that ``yibao audit verify`` checks both alike.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


YB_AUDIT_APPEND = """
CREATE OR REPLACE FUNCTION yb_audit_append(
    p_chain int, p_at timestamptz, p_actor_kind text, p_actor_id text, p_actor_division text,
    p_channel text, p_action text, p_person bigint, p_subject text, p_detail text, p_tail text
) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_seq int;
    v_prev text;
    v_hash text;
BEGIN
    INSERT INTO audit_chain_heads (chain, seq, hash) VALUES (p_chain, 0, repeat('0', 64))
        ON CONFLICT DO NOTHING;
    SELECT seq, hash INTO v_seq, v_prev FROM audit_chain_heads WHERE chain = p_chain FOR UPDATE;
    v_seq := v_seq + 1;
    v_hash := encode(sha256(convert_to(
        v_prev || '[' || p_chain || ',' || v_seq || ',' || substr(p_tail, 2), 'UTF8')), 'hex');
    INSERT INTO audit_log (chain, seq, at, actor_kind, actor_id, actor_division, channel, action,
                           person_id, subject, detail, prev_hash, hash)
        VALUES (p_chain, v_seq, p_at, p_actor_kind, p_actor_id, p_actor_division, p_channel,
                p_action, p_person, p_subject, p_detail::json, v_prev, v_hash);
    UPDATE audit_chain_heads SET seq = v_seq, hash = v_hash WHERE chain = p_chain;
END;
$$;
"""

# Everything 1101 and 2207 read, in one call and one snapshot. NULL when the
# access id is unknown; the caller checks the rest.
YB_HIS_READ = """
CREATE OR REPLACE FUNCTION yb_his_read(
    p_access text, p_sign_no text, p_nonce text, p_cert_type text, p_cert_no text,
    p_mdtrt_id text
) RETURNS json LANGUAGE plpgsql STABLE AS $$
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
        SELECT json_build_object('status', c.status, 'person_id', c.person_id), c.person_id
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
"""

# The nonce claimed and the read audited: 1101's one write.
YB_HIS_TOUCH = """
CREATE OR REPLACE FUNCTION yb_his_touch(
    p_access text, p_nonce text, p_at timestamptz,
    p_chain int, p_actor_kind text, p_actor_id text, p_actor_division text,
    p_channel text, p_action text, p_person bigint, p_subject text, p_detail text, p_tail text
) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    v_claim bigint;
BEGIN
    INSERT INTO his_nonces (access_id, nonce, at) VALUES (p_access, p_nonce, p_at)
        ON CONFLICT DO NOTHING RETURNING id INTO v_claim;
    IF v_claim IS NULL THEN
        RETURN false;
    END IF;
    PERFORM yb_audit_append(p_chain, p_at, p_actor_kind, p_actor_id, p_actor_division,
                            p_channel, p_action, p_person, p_subject, p_detail, p_tail);
    RETURN true;
END;
$$;
"""

# 2207 in one transaction: the nonce, yb_settle (migration 0005) with the
# balance the split was computed from checked too, and the audit entry. Any
# other outcome than 'ok' raises, so that nothing of it stays.
YB_HIS_SETTLE = """
CREATE OR REPLACE FUNCTION yb_his_settle(
    p_access text, p_nonce text, p_balance_seen bigint,
    p_key text, p_kind text, p_person bigint, p_memo text, p_result json, p_at timestamptz,
    p_codes text[], p_kinds text[], p_amounts bigint[], p_pids bigint[], p_areas text[],
    p_visit bigint, p_insutype text, p_year int, p_ded_seen bigint, p_fund_seen bigint,
    p_setl json,
    p_chain int, p_actor_kind text, p_actor_id text, p_actor_division text,
    p_channel text, p_action text, p_subject text, p_detail text, p_tail text
) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_claim bigint;
    v_status text;
    v_balance bigint;
    v_acct bigint;
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
    v_acct := coalesce((SELECT -l.amt FROM unnest(p_codes, p_amounts) AS l(c, amt)
                        WHERE l.c = 'IA:' || p_person), 0);
    SELECT balance INTO v_balance FROM ledger_accounts WHERE code = 'IA:' || p_person;
    IF coalesce(v_balance, 0) <> p_balance_seen - v_acct THEN
        RAISE EXCEPTION 'yb:stale';
    END IF;
    PERFORM yb_audit_append(p_chain, p_at, p_actor_kind, p_actor_id, p_actor_division,
                            p_channel, p_action, p_person, p_subject, p_detail, p_tail);
    RETURN 'ok';
END;
$$;
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for ddl in (YB_AUDIT_APPEND, YB_HIS_READ, YB_HIS_TOUCH, YB_HIS_SETTLE):
            op.execute(ddl)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name in ("yb_his_settle", "yb_his_touch", "yb_his_read", "yb_audit_append"):
            op.execute(f"DROP FUNCTION IF EXISTS {name}")
