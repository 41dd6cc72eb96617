"""An HIS request as an HIS sends it to the platform's gateway: the envelope
and the signed headers. One signer for the tests (``tests/his/client.py``)
and the benchmark (``bench/settlement.py``), signing with the same formulas
the gateway checks (``institution_auth.gateway_signature`` and
``body_signature``)."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from collections.abc import Mapping
from typing import Any

from yibao.clock import CHINA
from yibao.services.access.institution_auth import body_signature, gateway_signature

_seq = itertools.count(1)


def headers(
    *,
    access_id: str,
    secret: str,
    timestamp: int | str,
    nonce: str,
    body: bytes = b"",
    sign_body: bool = False,
) -> dict[str, str]:
    """The gateway headers: ``x-tif-signature`` = hex SHA-256 of timestamp +
    secret + nonce + timestamp; with ``sign_body`` also ``x-yb-body-signature``."""
    ts = str(timestamp)
    out = {
        "content-type": "application/json",
        "x-tif-paasid": access_id,
        "x-tif-timestamp": ts,
        "x-tif-nonce": nonce,
        "x-tif-signature": gateway_signature(ts, secret, nonce),
    }
    if sign_body:
        out["x-yb-body-signature"] = body_signature(secret, body)
    return out


def envelope(
    infno: str,
    inp: Mapping[str, Any],
    *,
    msgid: str,
    institution: Mapping[str, str],
    sign_no: str = "",
    inf_time: str = "",
    signed_with: tuple[str, str] = ("", ""),
) -> dict[str, Any]:
    """The platform's request envelope (his-interface.md)."""
    return {
        "infno": infno,
        "msgid": msgid,
        "mdtrtarea_admvs": "330500",
        "insuplc_admdvs": "",
        "recer_sys_code": "FSI_LOCAL",
        "dev_no": "",
        "dev_safe_info": "",
        "cainfo": signed_with[0],
        "signtype": signed_with[1],
        "infver": "V1.0",
        "opter_type": "1",
        "opter": "001",
        "opter_name": "收费员",
        "inf_time": inf_time,
        "fixmedins_code": institution["code"],
        "fixmedins_name": institution.get("name", ""),
        "sign_no": sign_no,
        "input": dict(inp),
    }


def body(env: Mapping[str, Any]) -> bytes:
    return json.dumps(env, ensure_ascii=False).encode()


_msg_seq = itertools.count(1)


def msgid(institution_code: str, moment: dt.datetime) -> str:
    """A msgid of the documented form: the institution's code, the time
    (yyyyMMddHHmmss, China time) and a 4-digit sequence of this process, 30
    characters; unique while a process sends fewer than 10,000 a second."""
    stamp = moment.astimezone(CHINA).strftime("%Y%m%d%H%M%S")
    return f"{institution_code}{stamp}{next(_msg_seq) % 10_000:04d}"


def nonce(tag: str = "") -> str:
    """A nonce not used before by this process."""
    return f"n{next(_seq)}x{tag}"
