"""A signed HIS client for the tests: signs like an HIS signs for the
platform's gateway (the shared signer, ``yibao.testing.his``) and wraps
inputs in the platform's envelope."""

from __future__ import annotations

import itertools
import json
from typing import Any

from yibao.clock import FixedClock
from yibao.testing import his as signer

ENDPOINT = "/fsi/api/rsfComIfsService/callService"
_seq = itertools.count(1)


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
        return signer.msgid(self.code, self.clock.now())

    def headers(
        self, body: bytes, nonce: str | None = None, ts: int | None = None
    ) -> dict[str, str]:
        return signer.headers(
            access_id=self.access_id,
            secret=self.secret,
            timestamp=ts if ts is not None else int(self.clock.now().timestamp()),
            nonce=nonce or signer.nonce(self.code),
            body=body,
            sign_body=self.body_signature,
        )

    def envelope(self, infno: str, inp: dict[str, Any], msgid: str | None = None) -> dict[str, Any]:
        return signer.envelope(
            infno,
            inp,
            msgid=msgid or self.msgid(),
            institution={"code": self.code, "name": self.name},
            sign_no=self.sign_no,
            inf_time=self.clock.now().strftime("%Y-%m-%d %H:%M:%S"),
            signed_with=self.ca,
        )

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

    def declare_failure(self, start: str, end: str, reason: str = "读卡器故障") -> dict[str, Any]:
        """9901: an equipment failure, declared after the repair."""
        out: dict[str, Any] = self.ok(
            "9901", {"data": {"begntime": start, "endtime": end, "reason": reason}}
        )
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
