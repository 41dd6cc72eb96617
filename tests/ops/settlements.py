"""Settlements made straight through the HIS use cases (2201, 2204, 2207),
for the backup tests: each one a ledger entry with its audit records."""

from __future__ import annotations

import itertools
from typing import Any

from sqlalchemy import select

from yibao.runtime import Services
from yibao.services.access.institution_auth import Caller
from yibao.services.settlement import settlement as svc
from yibao.store.models import Institution, Person

_seq = itertools.count(1)


class Hospital:
    """The demo's first institution settling one demo person's visits."""

    def __init__(self, services: Services, demo: dict[str, Any], person: int = 0) -> None:
        self.services = services
        with services.uow() as u:
            code = demo["institutions"][0]["code"]
            inst = u.session.execute(
                select(Institution).where(Institution.code == code)
            ).scalar_one()
            self.caller = Caller.of(inst, inst.access_id, signed_in=True)
            holder = demo["persons"][person]
            self.psn_no = str(
                u.session.execute(
                    select(Person.id).where(Person.certno == holder["certno"])
                ).scalar_one()
            )
        self.cert = ("03", holder["card_no"])
        self.tag = f"BK{next(_seq):03d}"
        self.seq = itertools.count(1)

    def _msg(self, infno: str, inp: dict[str, Any]) -> svc.Message:
        return svc.Message(f"{self.tag}{next(self.seq):06d}", infno, inp)

    def settle(self, fen: int) -> str:
        """Register a visit, upload one fee line, settle it: the setl_id."""
        data = {
            "psn_no": self.psn_no,
            "begntime": "2026-11-23 09:00:00",
            "mdtrt_cert_type": self.cert[0],
            "mdtrt_cert_no": self.cert[1],
        }
        out = svc.register(
            self.services.uow(), self.caller, msg=self._msg("2201", {"data": data}), data=data
        )
        mdtrt_id = str(out["data"]["mdtrt_id"])
        lines = [
            {
                "feedetl_sn": "F1",
                "mdtrt_id": mdtrt_id,
                "psn_no": self.psn_no,
                "med_list_codg": "250101001",
                "det_item_fee_sumamt": f"{fen / 100:.2f}",
            }
        ]
        svc.upload_fees(
            self.services.uow(),
            self.caller,
            msg=self._msg("2204", {"feedetail": lines}),
            lines=lines,
        )
        settle = {
            "psn_no": self.psn_no,
            "mdtrt_cert_type": self.cert[0],
            "mdtrt_cert_no": self.cert[1],
            "medfee_sumamt": f"{fen / 100:.2f}",
            "mdtrt_id": mdtrt_id,
            "acct_used_flag": "1",
        }
        done = svc.settle(
            self.services.uow(), self.caller, msg=self._msg("2207", {"data": settle}), data=settle
        )
        return str(done["setlinfo"]["setl_id"])
