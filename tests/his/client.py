"""A signed HIS client for the tests: signs like an HIS signs for the
platform's gateway and wraps inputs in the platform's envelope."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
from typing import Any

from yibao.clock import FixedClock

ENDPOINT = "/fsi/api/rsfComIfsService/callService"
_seq = itertools.count(1)


def signature(timestamp: str, secret: str, nonce: str) -> str:
    return hashlib.sha256(f"{timestamp}{secret}{nonce}{timestamp}".encode()).hexdigest()


class His:
    def __init__(self, client: Any, inst: dict[str, Any], clock: FixedClock) -> None:
        self.client = client
        self.code = inst["code"]
        self.name = inst["name"]
        self.secret = inst["secret"]
        self.access_id = inst.get("access_id", inst["code"])
        self.clock = clock
        self.sign_no = ""
        self.body_signature = False
        # a province's body signature (cainfo, signtype), sent in the envelope
        self.ca = ("", "")

    def msgid(self) -> str:
        stamp = self.clock.now().strftime("%Y%m%d%H%M%S")
        return f"{self.code}{stamp}{next(_seq):04d}"[:30]

    def headers(
        self, body: bytes, nonce: str | None = None, ts: int | None = None
    ) -> dict[str, str]:
        timestamp = str(ts if ts is not None else int(self.clock.now().timestamp()))
        nonce = nonce or f"n{next(_seq)}x{self.code}"
        h = {
            "content-type": "application/json",
            "x-tif-paasid": self.access_id,
            "x-tif-timestamp": timestamp,
            "x-tif-nonce": nonce,
            "x-tif-signature": signature(timestamp, self.secret, nonce),
        }
        if self.body_signature:
            h["x-yb-body-signature"] = hmac.new(
                self.secret.encode(), body, hashlib.sha256
            ).hexdigest()
        return h

    def envelope(self, infno: str, inp: dict[str, Any], msgid: str | None = None) -> dict[str, Any]:
        return {
            "infno": infno,
            "msgid": msgid or self.msgid(),
            "mdtrtarea_admvs": "330500",
            "insuplc_admdvs": "",
            "recer_sys_code": "FSI_LOCAL",
            "dev_no": "",
            "dev_safe_info": "",
            "cainfo": self.ca[0],
            "signtype": self.ca[1],
            "infver": "V1.0",
            "opter_type": "1",
            "opter": "001",
            "opter_name": "收费员",
            "inf_time": self.clock.now().strftime("%Y-%m-%d %H:%M:%S"),
            "fixmedins_code": self.code,
            "fixmedins_name": self.name,
            "sign_no": self.sign_no,
            "input": inp,
        }

    def post(self, body: bytes, headers: dict[str, str], path: str = ENDPOINT) -> dict[str, Any]:
        response = self.client.post(path, content=body, headers=headers)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    def call(
        self, infno: str, inp: dict[str, Any], *, msgid: str | None = None, path: str = ENDPOINT
    ) -> dict[str, Any]:
        body = json.dumps(self.envelope(infno, inp, msgid), ensure_ascii=False).encode()
        return self.post(body, self.headers(body), path)

    def ok(self, infno: str, inp: dict[str, Any], **kw: Any) -> dict[str, Any]:
        result = self.call(infno, inp, **kw)
        assert result["infcode"] == 0, result["err_msg"]
        out: dict[str, Any] = result["output"]
        return out

    def sign_in(self) -> str:
        out = self.ok("9001", {"signIn": {"opter_no": "001", "mac": "", "ip": "10.0.0.1"}})
        self.sign_no = out["signinoutb"]["sign_no"]
        return self.sign_no

    # ---- a visit, end to end

    def person(self, card_no: str) -> dict[str, Any]:
        return self.ok(
            "1101", {"data": {"mdtrt_cert_type": "03", "mdtrt_cert_no": card_no, "card_sn": ""}}
        )

    def register(self, psn_no: str, card_no: str, **extra: Any) -> str:
        data = {
            "psn_no": psn_no,
            "insutype": "",
            "begntime": self.clock.now().strftime("%Y-%m-%d %H:%M:%S"),
            "mdtrt_cert_type": "03",
            "mdtrt_cert_no": card_no,
            "ipt_otp_no": f"OP{next(_seq)}",
            "atddr_no": "D01",
            "dr_name": "王医生",
            "dept_code": "A03",
            "dept_name": "内科",
            "caty": "A03",
            **extra,
        }
        out = self.ok("2201", {"data": data})
        mdtrt_id: str = out["data"]["mdtrt_id"]
        return mdtrt_id

    def fees(self, mdtrt_id: str, psn_no: str, lines: list[tuple[str, str]]) -> dict[str, Any]:
        """lines: (med_list_codg, yuan amount)."""
        feedetail = [
            {
                "feedetl_sn": f"F{next(_seq)}",
                "mdtrt_id": mdtrt_id,
                "psn_no": psn_no,
                "chrg_bchno": "B1",
                "fee_ocur_time": self.clock.now().strftime("%Y-%m-%d %H:%M:%S"),
                "med_list_codg": code,
                "medins_list_codg": code,
                "det_item_fee_sumamt": amount,
                "cnt": 1,
                "pric": amount,
            }
            for code, amount in lines
        ]
        return self.ok("2204", {"feedetail": feedetail})

    def settle_input(
        self, mdtrt_id: str, psn_no: str, card_no: str, total: str, acct: str = "1"
    ) -> dict[str, Any]:
        return {
            "data": {
                "psn_no": psn_no,
                "mdtrt_cert_type": "03",
                "mdtrt_cert_no": card_no,
                "med_type": "11",
                "medfee_sumamt": total,
                "psn_setlway": "01",
                "mdtrt_id": mdtrt_id,
                "chrg_bchno": "B1",
                "insutype": "310",
                "acct_used_flag": acct,
                "invono": "",
            }
        }
