"""The HIS interface under hostile and careless input, table-driven (issue 14).

For every transaction code, every field of the envelope and of the code's
input (his-interface.md, the national interface's lengths) is replaced in
turn by null (where it is required), a wrong type, non-ASCII digits, an
overflowing amount or count, an impossible date or time, a code outside its
table and a text past its length, as they apply to the field. Each such
request must be answered ``infcode`` -1 with ``err_msg`` naming the field by
its path, never "internal error" nor the unknown-outcome answer, and no
table may change (the nonce table aside: an authentic request that is then
refused uses up its nonce by design). Afterwards the request as it was is
answered, so each refusal was the fault's.

On SQLite, on PostgreSQL, and on PostgreSQL with the fast path on (1101 and
2207), which must refuse the same table the same way.

The fields are listed here from the interface document, not read from
yibao's models, so that a field the models forgot is still sent.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.his.apps import his_app
from tests.his.client import His
from tests.his.tables import digests
from yibao.services.settlement.inputs import INFNOS

INTERNAL = ("internal error", "系统内部错误", "outcome is unknown")
FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")

# the kinds of field, and what each is sent instead of a good value
TEXT, ID, DIGITS, CODE, AMOUNT, TIME, DATE, COUNT, QUANTITY = (
    "text",
    "id",
    "digits",
    "code",
    "amount",
    "time",
    "date",
    "count",
    "quantity",
)
OBJECT, LIST, DIVISION, MSGID, INSTITUTION, INFNO = (
    "object",
    "list",
    "division",
    "msgid",
    "institution",
    "infno",
)


@dataclass(frozen=True)
class Field:
    path: tuple[str | int, ...]
    kind: str
    required: bool = False
    most: int = 0  # a text's or an identifier's length

    @property
    def name(self) -> str:
        return ".".join(str(p) for p in self.path)


def _wide(value: Any) -> str:
    """The value with its ASCII digits in full width (１２ for 12)."""
    return str(value).translate(FULL_WIDTH)


def faults(f: Field, good: Any) -> list[tuple[str, Any]]:
    """(what, value) to send instead of ``good`` in field ``f``."""
    out: list[tuple[str, Any]] = []
    if f.required:
        out.append(("null", None))
        if f.kind not in (OBJECT, LIST):
            out.append(("blank", ""))
    if f.kind == TEXT:
        out += [
            ("an object", {"text": "x"}),
            ("an array", ["x"]),
            ("too long", "长" * (f.most + 1)),
            ("a control character", "a\x00b"),
        ]
    elif f.kind == ID:
        out += [
            ("an object", {"id": good}),
            ("an array", [good]),
            ("a boolean", True),
            ("a fraction", 1.5),
            ("non-ASCII digits", _wide(good) if any(c.isdigit() for c in str(good)) else "é"),
            ("a space", "A B"),
            ("too long", "A" * (f.most + 1)),
        ]
    elif f.kind == DIGITS:
        out += [
            ("an array", [good]),
            ("an object", {"n": good}),
            ("a boolean", True),
            ("a fraction", 1.5),
            ("non-ASCII digits", _wide(good)),
            ("superscript digits", "1²"),
            ("letters", "12a"),
            ("too long", "1" * (f.most + 1)),
        ]
    elif f.kind == CODE:
        out += [
            ("an array", [good]),
            ("an object", {"code": good}),
            ("a boolean", True),
            ("a fraction", 1.5),
            ("non-ASCII digits", _wide(good)),
            ("not a code", "99"),
            ("not a code", "0" + str(good)),
        ]
    elif f.kind == AMOUNT:
        out += [
            ("an array", [good]),
            ("an object", {"yuan": good}),
            ("a boolean", True),
            ("letters", "abc"),
            ("non-ASCII digits", _wide(good)),
            ("an overflowing amount", "1e999999"),
            ("an overflowing amount", 1e20),
            ("an overflowing amount", "9999999999999.99"),
            ("an exponent", "1e2"),
            ("three decimals", "1.001"),
            ("a negative amount", "-1.00"),
        ]
    elif f.kind in (TIME, DATE):
        day = f.kind == DATE
        out += [
            ("an array", [good]),
            ("an object", {"t": good}),
            ("a number", 20261123),
            ("a boolean", True),
            ("non-ASCII digits", _wide(good)),
            ("an impossible date", "2026-02-30" if day else "2026-02-30 10:00:00"),
            ("an impossible date", "9999-12-31" if day else "9999-12-31 23:59:59"),
            ("an impossible date", "0001-01-01" if day else "0001-01-01 00:00:00"),
            ("an impossible date", "2026-13-01" if day else "2026-11-23 24:00:00"),
            ("another form", "2026/11/23"),
        ]
    elif f.kind == COUNT:
        out += [
            ("an array", [good]),
            ("letters", "abc"),
            ("a boolean", True),
            ("a fraction", 1.5),
            ("non-ASCII digits", "１"),
            ("an overflowing count", 10**30),
            ("an overflowing count", "1e999999"),
            ("a negative count", -1),
        ]
    elif f.kind == QUANTITY:
        out += [
            ("an array", [good]),
            ("letters", "abc"),
            ("a boolean", True),
            ("non-ASCII digits", "１"),
            ("an overflowing number", "1e999999"),
            ("an overflowing number", 1e20),
            ("an overflowing number", "9" * 13),
            ("five decimals", "0.00001"),
            ("zero", 0),
            ("a negative number", "-1"),
        ]
    elif f.kind == OBJECT:
        out += [("a text", "x"), ("an array", [1]), ("a number", 5), ("a boolean", True)]
    elif f.kind == LIST:
        out += [("a number", 5), ("a boolean", True), ("a text", "x"), ("an object", {"a": 1})]
        if f.required:
            out.append(("empty", []))
    elif f.kind == DIVISION:
        out += [
            ("an array", [good]),
            ("an object", {"code": good}),
            ("a boolean", True),
            ("non-ASCII digits", _wide(good)),
            ("five digits", "33050"),
            ("seven digits", "3305001"),
        ]
    elif f.kind == MSGID:
        code, stamp = good[:12], good[12:26]
        out += [
            ("an array", [good]),
            ("an object", {"msgid": good}),
            ("a number", int(good[1:])),
            ("non-ASCII digits", good[:-1] + _wide(good[-1])),
            ("200,000 characters", "H" * 200_000),
            ("29 characters", good[:-1]),
            ("31 characters", good + "1"),
            ("another institution's", "H99999999999" + good[12:]),
            ("an impossible time", f"{code}{stamp[:4]}1332{stamp[8:]}{good[26:]}"),
            ("another form", f"{code}-{stamp}-{good[26:]}"),
        ]
    elif f.kind == INSTITUTION:
        out += [
            ("an array", [good]),
            ("an object", {"code": good}),
            ("non-ASCII digits", _wide(good)),
            ("another form", "X" + good[1:]),
            ("too long", good + "0"),
        ]
    elif f.kind == INFNO:
        out += [
            ("an array", [good]),
            ("an object", {"infno": good}),
            ("a boolean", True),
            ("non-ASCII digits", _wide(good)),
            ("an unknown code", "9999"),
            ("five digits", good + "1"),
        ]
    else:  # pragma: no cover - a kind without faults is a mistake in this table
        raise AssertionError(f.kind)
    return out


ENVELOPE = [
    Field(("infno",), INFNO, required=True),
    Field(("msgid",), MSGID, required=True),
    Field(("fixmedins_code",), INSTITUTION, required=True),
    Field(("mdtrtarea_admvs",), DIVISION),
    Field(("insuplc_admdvs",), DIVISION),
    Field(("recer_sys_code",), TEXT, most=30),
    Field(("dev_no",), TEXT, most=100),
    Field(("dev_safe_info",), TEXT, most=2000),
    Field(("cainfo",), TEXT, most=4096),
    Field(("signtype",), TEXT, most=30),
    Field(("infver",), TEXT, most=10),
    Field(("opter_type",), CODE),
    Field(("opter",), TEXT, most=30),
    Field(("opter_name",), TEXT, most=50),
    Field(("inf_time",), TIME),
    Field(("fixmedins_name",), TEXT, most=200),
    Field(("sign_no",), ID, most=40),
    Field(("input",), OBJECT, required=True),
]


def _data(*fields: tuple[str, str, bool, int], under: tuple[str | int, ...]) -> list[Field]:
    return [Field((*under, name), kind, required, most) for name, kind, required, most in fields]


def _in(name: str) -> Field:
    return Field(("input", name), OBJECT, required=True)


REQ, OPT = True, False
SETTLE = [
    ("psn_no", DIGITS, REQ, 30),
    ("mdtrt_cert_type", CODE, REQ, 0),
    ("mdtrt_cert_no", ID, REQ, 100),
    ("med_type", CODE, OPT, 0),
    ("medfee_sumamt", AMOUNT, REQ, 0),
    ("psn_setlway", CODE, OPT, 0),
    ("mdtrt_id", ID, REQ, 40),
    ("chrg_bchno", ID, OPT, 30),
    ("insutype", CODE, OPT, 0),
    ("acct_used_flag", CODE, OPT, 0),
    ("invono", ID, OPT, 50),
    ("certno", ID, OPT, 50),
    ("psn_name", TEXT, OPT, 50),
]
SETTLEMENT = [("setl_id", ID, REQ, 40), ("mdtrt_id", ID, REQ, 40), ("psn_no", DIGITS, REQ, 30)]
DATA = ("input", "data")

FIELDS: dict[str, list[Field]] = {
    "9001": [
        _in("signIn"),
        *_data(
            ("opter_no", TEXT, OPT, 30),
            ("mac", TEXT, OPT, 50),
            ("ip", TEXT, OPT, 50),
            under=("input", "signIn"),
        ),
    ],
    "9002": [
        _in("signOut"),
        *_data(("sign_no", ID, REQ, 40), ("opter_no", TEXT, OPT, 30), under=("input", "signOut")),
    ],
    "1101": [
        _in("data"),
        *_data(
            ("mdtrt_cert_type", CODE, REQ, 0),
            ("mdtrt_cert_no", ID, REQ, 100),
            ("card_sn", ID, OPT, 50),
            ("begntime", TIME, OPT, 0),
            ("psn_cert_type", CODE, OPT, 0),
            ("certno", ID, OPT, 50),
            ("psn_name", TEXT, OPT, 50),
            under=DATA,
        ),
    ],
    "2201": [
        _in("data"),
        *_data(
            ("psn_no", DIGITS, REQ, 30),
            ("insutype", CODE, OPT, 0),
            ("begntime", TIME, REQ, 0),
            ("mdtrt_cert_type", CODE, REQ, 0),
            ("mdtrt_cert_no", ID, REQ, 100),
            ("ipt_otp_no", TEXT, OPT, 30),
            ("atddr_no", TEXT, OPT, 30),
            ("dr_name", TEXT, OPT, 50),
            ("dept_code", TEXT, OPT, 30),
            ("dept_name", TEXT, OPT, 100),
            ("caty", TEXT, OPT, 30),
            ("med_type", CODE, OPT, 0),
            ("certno", ID, OPT, 50),
            ("psn_name", TEXT, OPT, 50),
            ("cash_fallback", CODE, OPT, 0),
            ("invono", ID, OPT, 50),
            under=DATA,
        ),
    ],
    "2202": [
        _in("data"),
        *_data(
            ("psn_no", DIGITS, REQ, 30),
            ("mdtrt_id", ID, REQ, 40),
            ("ipt_otp_no", TEXT, OPT, 30),
            under=DATA,
        ),
    ],
    "2203": [
        _in("mdtrtinfo"),
        *_data(
            ("mdtrt_id", ID, REQ, 40),
            ("psn_no", DIGITS, REQ, 30),
            ("med_type", CODE, OPT, 0),
            ("begntime", TIME, OPT, 0),
            under=("input", "mdtrtinfo"),
        ),
        Field(("input", "diseinfo"), LIST),
        Field(("input", "diseinfo", 0), OBJECT, required=True),
        *_data(
            ("diag_type", CODE, REQ, 0),
            ("diag_code", ID, REQ, 20),
            ("diag_name", TEXT, OPT, 100),
            under=("input", "diseinfo", 0),
        ),
    ],
    "2204": [
        Field(("input", "feedetail"), LIST, required=True),
        Field(("input", "feedetail", 0), OBJECT, required=True),
        *_data(
            ("feedetl_sn", ID, REQ, 30),
            ("mdtrt_id", ID, REQ, 40),
            ("psn_no", DIGITS, REQ, 30),
            ("chrg_bchno", ID, OPT, 30),
            ("fee_ocur_time", TIME, OPT, 0),
            ("med_list_codg", ID, REQ, 50),
            ("medins_list_codg", TEXT, OPT, 150),
            ("det_item_fee_sumamt", AMOUNT, REQ, 0),
            ("cnt", QUANTITY, OPT, 0),
            ("pric", AMOUNT, OPT, 0),
            under=("input", "feedetail", 0),
        ),
    ],
    "2205": [
        _in("data"),
        *_data(
            ("chrg_bchno", ID, OPT, 30),
            ("feedetl_sn", ID, OPT, 30),
            ("mdtrt_id", ID, REQ, 40),
            ("psn_no", DIGITS, REQ, 30),
            under=DATA,
        ),
    ],
    "2206": [_in("data"), *_data(*SETTLE, under=DATA)],
    "2207": [_in("data"), *_data(*SETTLE, under=DATA)],
    "2208": [_in("data"), *_data(*SETTLEMENT, under=DATA)],
    "3201": [
        _in("data"),
        *_data(
            ("insutype", CODE, OPT, 0),
            ("clr_type", CODE, OPT, 0),
            ("setl_optins", DIVISION, OPT, 0),
            ("stmt_begndate", DATE, REQ, 0),
            ("stmt_enddate", DATE, REQ, 0),
            ("medfee_sumamt", AMOUNT, REQ, 0),
            ("fund_pay_sumamt", AMOUNT, REQ, 0),
            ("acct_pay", AMOUNT, REQ, 0),
            ("fixmedins_setl_cnt", COUNT, REQ, 0),
            under=DATA,
        ),
    ],
    "5203": [_in("data"), *_data(*SETTLEMENT, under=DATA)],
    "9901": [
        _in("data"),
        *_data(
            ("begntime", TIME, REQ, 0),
            ("endtime", TIME, REQ, 0),
            ("reason", TEXT, REQ, 200),
            under=DATA,
        ),
    ],
}


# ---------------------------------------------------------------- the state


@dataclass
class City:
    """A signed-in hospital with a registered visit that has a fee line, and
    a settled visit: what each code's good request refers to."""

    his: His
    person: dict[str, Any]
    psn_no: str
    visit: str  # registered, one fee line F-OPEN
    settled_visit: str
    setl_id: str


def _city(his: His, demo: dict[str, Any]) -> City:
    his.sign_in()
    zhang = demo["persons"][0]
    psn_no = his.person(zhang["card_no"])["baseinfo"]["psn_no"]
    visit = his.register(psn_no, zhang["card_no"])
    his.ok("2204", {"feedetail": [_fee(his, visit, psn_no, "F-OPEN")]})
    settled = his.register(psn_no, zhang["card_no"])
    his.fees(settled, psn_no, [("250101001", "20.00")])
    out = his.ok("2207", his.settle_input(settled, psn_no, zhang["card_no"], "20.00"))
    return City(his, zhang, psn_no, visit, settled, out["setlinfo"]["setl_id"])


def _fee(his: His, mdtrt_id: str, psn_no: str, sn: str) -> dict[str, Any]:
    return {
        "feedetl_sn": sn,
        "mdtrt_id": mdtrt_id,
        "psn_no": psn_no,
        "chrg_bchno": "B1",
        "fee_ocur_time": his.clock.now().strftime("%Y-%m-%d %H:%M:%S"),
        "med_list_codg": "250101001",
        "medins_list_codg": "250101001",
        "det_item_fee_sumamt": "20.00",
        "cnt": 1,
        "pric": "20.00",
    }


def good_input(infno: str, c: City) -> dict[str, Any]:
    """The request of ``infno`` that is answered, every field given."""
    his, now = c.his, c.his.clock.now()
    stamp = now.strftime("%Y-%m-%d %H:%M:%S")
    card = {"mdtrt_cert_type": "03", "mdtrt_cert_no": c.person["card_no"]}
    named = {"certno": c.person["certno"], "psn_name": c.person["name"]}
    settle = {
        **his.settle_input(c.visit, c.psn_no, c.person["card_no"], "20.00")["data"],
        "invono": "INV0001",
        **named,
    }
    settlement = {"setl_id": c.setl_id, "mdtrt_id": c.settled_visit, "psn_no": c.psn_no}
    yesterday = (now - dt.timedelta(days=1)).strftime("%Y-%m-%d")
    return {
        "9001": {"signIn": {"opter_no": "001", "mac": "00-11-22-33-44-55", "ip": "10.0.0.1"}},
        "9002": {"signOut": {"sign_no": his.sign_no, "opter_no": "001"}},
        "1101": {
            "data": {
                **card,
                "card_sn": "SN0001",
                "begntime": stamp,
                "psn_cert_type": "01",
                **named,
            }
        },
        "2201": {
            "data": {
                "psn_no": c.psn_no,
                "insutype": "310",
                "begntime": stamp,
                **card,
                "ipt_otp_no": "OP0001",
                "atddr_no": "D01",
                "dr_name": "王医生",
                "dept_code": "A03",
                "dept_name": "内科",
                "caty": "A03",
                "med_type": "11",
                **named,
                "cash_fallback": "0",
                "invono": "INV0001",
            }
        },
        "2202": {"data": {"psn_no": c.psn_no, "mdtrt_id": c.visit, "ipt_otp_no": "OP0001"}},
        "2203": {
            "mdtrtinfo": {
                "mdtrt_id": c.visit,
                "psn_no": c.psn_no,
                "med_type": "11",
                "begntime": stamp,
            },
            "diseinfo": [
                {"diag_type": "1", "diag_code": "J06.900", "diag_name": "急性上呼吸道感染"}
            ],
        },
        "2204": {"feedetail": [_fee(his, c.visit, c.psn_no, "F-NEW")]},
        "2205": {
            "data": {
                "chrg_bchno": "B1",
                "feedetl_sn": "F-OPEN",
                "mdtrt_id": c.visit,
                "psn_no": c.psn_no,
            }
        },
        "2206": {"data": settle},
        "2207": {"data": settle},
        "2208": {"data": settlement},
        "3201": {
            "data": {
                "insutype": "310",
                "clr_type": "11",
                "setl_optins": "330500",
                "stmt_begndate": now.strftime("%Y-%m-%d"),
                "stmt_enddate": now.strftime("%Y-%m-%d"),
                "medfee_sumamt": "20.00",
                "fund_pay_sumamt": "0.00",
                "acct_pay": "20.00",
                "fixmedins_setl_cnt": 1,
            }
        },
        "5203": {"data": settlement},
        "9901": {
            "data": {
                "begntime": f"{yesterday} 08:00:00",
                "endtime": f"{yesterday} 09:30:00",
                "reason": "读卡器故障",
            }
        },
    }[infno]


def good_envelope(infno: str, c: City) -> dict[str, Any]:
    env = c.his.envelope(infno, good_input(infno, c))
    # every field of the envelope given a value of its form
    return env | {
        "insuplc_admdvs": "330500",
        "dev_no": "DEV-01",
        "dev_safe_info": "safe",
        "opter_type": "1",
    }


def _at(doc: Any, path: tuple[str | int, ...]) -> Any:
    for p in path:
        doc = doc[p]
    return doc


def _with(doc: dict[str, Any], path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    """A copy of ``doc`` with the value at ``path`` replaced."""
    copy = json.loads(json.dumps(doc))
    parent = _at(copy, path[:-1])
    parent[path[-1]] = value
    result: dict[str, Any] = copy
    return result


def _send(his: His, env: dict[str, Any]) -> dict[str, Any]:
    body = json.dumps(env, ensure_ascii=False).encode()
    return his.post(body, his.headers(body))


# ---------------------------------------------------------------- the test


@pytest.fixture(params=[False, True], ids=["general", "fast_path"])
def fast(request: pytest.FixtureRequest, backend: str) -> bool:
    if request.param and backend == "sqlite":
        pytest.skip("SQLite has no fast path")
    return bool(request.param)


@pytest.fixture
def his_client(settings: Any, clock: Any, fast: bool) -> Iterator[tuple[TestClient, Any]]:
    with (
        his_app(settings, clock, fast_path=fast) as app,
        TestClient(app, base_url="https://testserver", raise_server_exceptions=False) as c,
    ):
        yield c, app


@pytest.mark.parametrize("infno", INFNOS)
def test_every_field_of_every_code_is_refused_naming_it_and_changes_nothing(
    infno: str,
    fast: bool,
    his_client: tuple[TestClient, Any],
    demo: dict[str, Any],
    clock: Any,
) -> None:
    client, app = his_client
    city = _city(His(client, demo["institutions"][0], clock), demo)
    engine = app.state.services.engine
    before = digests(engine, skip=frozenset({"his_nonces"}))
    fast_path = app.state.his_fast
    counted = (fast_path.served, fast_path.gave_way) if fast_path else None
    assert (fast_path is not None) == fast

    wrong: list[str] = []
    sent = 0
    for field in [*ENVELOPE, *FIELDS[infno]]:
        env = good_envelope(infno, city)
        good = _at(env, field.path)
        for what, value in faults(field, good):
            env_bad = _with(env, field.path, value)
            if field.name != "msgid":
                env_bad["msgid"] = city.his.msgid()  # a fresh request, not a resend
            answer = _send(city.his, env_bad)
            sent += 1
            err = str(answer.get("err_msg", ""))
            if (
                answer.get("infcode") != -1
                or not err.startswith(f"{field.name}:")
                or any(word in err for word in INTERNAL)
            ):
                wrong.append(f"{field.name} = {what}: {answer.get('infcode')} {err[:160]}")
    assert not wrong, f"{len(wrong)} of {sent} answered wrongly:\n" + "\n".join(wrong)
    after = digests(engine, skip=frozenset({"his_nonces"}))
    assert {t: d for t, d in after.items() if before.get(t) != d} == {}
    if fast_path is not None:
        # the message is read before the fast path looks at it
        assert (fast_path.served, fast_path.gave_way) == counted

    # the request as it was is answered: each refusal above was its fault's
    good = good_envelope(infno, city)
    answer = _send(city.his, good)
    assert answer["infcode"] == 0, answer["err_msg"]
    if counted is not None and infno in ("1101", "2207"):
        assert fast_path.served == counted[0] + 1  # and the fast path answered it
