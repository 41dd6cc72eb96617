"""The demo city: Huzhou, Zhejiang (湖州市), with real GB/T 2260 codes down to
the county. Street codes (9 digits) follow GB/T 10114's shape; their numbers
are illustrative. Everything here is deterministic, so that ``yibao demo
--json`` gives the same credentials on every machine."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from stdnum import luhn

from yibao.domain.access import Role
from yibao.domain.actors import Actor, Channel
from yibao.domain.cards import Path
from yibao.domain.ids import make_credit_code, make_resident_id
from yibao.runtime import Services
from yibao.services.access import employer_login
from yibao.services.access import staff as access_service
from yibao.services.cards import cards as card_service
from yibao.services.contributions import enrolment as enrolment_service
from yibao.services.directory import directory
from yibao.services.registry import registry
from yibao.services.tx import use_case
from yibao.store.models import DemoMarker
from yibao.store.uow import UnitOfWork

if TYPE_CHECKING:
    from yibao.services.access.terminals import IssuedCode

MARKER = "demo-city-v1"

DIVISIONS: list[tuple[str, str, str, bool]] = [
    ("000000", "全国", "China", False),
    ("330000", "浙江省", "Zhejiang", False),
    ("330500", "湖州市", "Huzhou", False),
    ("330502", "吴兴区", "Wuxing District", False),
    ("330503", "南浔区", "Nanxun District", False),
    ("330521", "德清县", "Deqing County", False),
    ("330522", "长兴县", "Changxing County", False),
    ("330523", "安吉县", "Anji County", False),
    ("330502001", "月河街道", "Yuehe Subdistrict", True),
    ("330502002", "朝阳街道", "Chaoyang Subdistrict", True),
    ("330503001", "南浔镇", "Nanxun Town", True),
    ("330521001", "武康街道", "Wukang Subdistrict", True),
    ("330522001", "雉城街道", "Zhicheng Subdistrict", True),
    ("330523001", "递铺街道", "Dipu Subdistrict", True),
    ("320000", "江苏省", "Jiangsu", False),
    ("320500", "苏州市", "Suzhou", False),
    ("320508", "姑苏区", "Gusu District", False),
]

STAFF_PASSWORD = "yibao-demo-2026"  # noqa: S105 - published demo credentials

STAFF: list[dict[str, str]] = [
    {"username": "admin", "name": "市医保局管理员", "role": Role.CITY_ADMIN, "division": "330500"},
    {
        "username": "zhejiang",
        "name": "省医保局管理员",
        "role": Role.PROVINCE_ADMIN,
        "division": "330000",
    },
    {
        "username": "wuxing",
        "name": "吴兴区医保中心 钱敏",
        "role": Role.COUNTY_CLERK,
        "division": "330502",
    },
    {
        "username": "nanxun",
        "name": "南浔区医保中心 孙莉",
        "role": Role.COUNTY_CLERK,
        "division": "330503",
    },
    {
        "username": "deqing",
        "name": "德清县医保中心 吴刚",
        "role": Role.COUNTY_CLERK,
        "division": "330521",
    },
    {
        "username": "yuehe",
        "name": "月河街道服务点 郑红",
        "role": Role.SERVICE_POINT_CLERK,
        "division": "330502001",
    },
    {
        "username": "wuxing_fund",
        "name": "吴兴区征缴经办 冯强",
        "role": Role.CONTRIBUTION_CLERK,
        "division": "330502",
    },
    {
        "username": "wuxing_admin",
        "name": "吴兴区医保局管理员",
        "role": Role.COUNTY_ADMIN,
        "division": "330502",
    },
]


def _account(division: str, body: int) -> str:
    digits = f"{division[:6]}{body:09d}"
    return digits + luhn.calc_check_digit(digits)


def _card(body: int) -> str:
    digits = f"{body:09d}"
    return digits + luhn.calc_check_digit(digits)


# name, birth division, birth date, sequence (odd: male), household division,
# phone, issuing county clerk, card body, PIN, portal password
_PERSONS: list[tuple[str, str, dt.date, int, str, str, str, int, str, str]] = [
    (
        "张伟",
        "330502",
        dt.date(1985, 3, 12),
        11,
        "330502001",
        "13905720001",
        "wuxing",
        572000101,
        "135790",
        "Zhangwei@2026",
    ),
    (
        "王芳",
        "330502",
        dt.date(1990, 7, 21),
        22,
        "330502002",
        "13905720002",
        "wuxing",
        572000102,
        "246802",
        "Wangfang@2026",
    ),
    (
        "李娜",
        "330503",
        dt.date(1978, 11, 5),
        42,
        "330503001",
        "13905720003",
        "nanxun",
        572000103,
        "368024",
        "Lina@2026",
    ),
    (
        "刘洋",
        "330521",
        dt.date(1995, 1, 30),
        13,
        "330521001",
        "13905720004",
        "deqing",
        572000104,
        "480246",
        "Liuyang@2026",
    ),
    (
        "陈静",
        "330502",
        dt.date(1962, 9, 9),
        24,
        "330502001",
        "13905720005",
        "wuxing",
        572000105,
        "502468",
        "Chenjing@2026",
    ),
    (
        "杨磊",
        "330503",
        dt.date(2001, 5, 17),
        35,
        "330503",
        "13905720006",
        "nanxun",
        572000106,
        "624680",
        "Yanglei@2026",
    ),
]

# A person who applied at the Yuehe service point and waits for the card.
_APPLICANT = ("赵敏", "330502", dt.date(1999, 12, 1), 46, "330502001", "13905720007")

_EMPLOYERS = [
    ("91330502", "MA2B3C4D5", "湖州织里童装有限公司", "330502"),
    ("91330503", "MA2E6F7G8", "南浔木业股份有限公司", "330503"),
    ("12330500", "470000000", "湖州市第一中学", "330500"),
]

# each demo employer's password on /employer/, in the order of _EMPLOYERS
_EMPLOYER_PASSWORDS = ["Zhili@2026", "Nanxun@2026", "Yizhong@2026"]

_INSTITUTIONS = [
    ("H33050200001", "湖州市中心医院", "hospital", "3", "330502", "hzzx-demo-secret-0001"),
    ("H33050200002", "吴兴区人民医院", "hospital", "2", "330502", "wxrm-demo-secret-0002"),
    ("H33050300001", "南浔区人民医院", "hospital", "2", "330503", "nxrm-demo-secret-0003"),
    ("P33050200001", "湖州老百姓大药房月河店", "pharmacy", "0", "330502", "lbx-demo-secret-0004"),
]

# what the public look-ups show of them (issue 16): address, telephone, and
# whether they settle visits of persons insured in another area
_INSTITUTION_PUBLIC = {
    "H33050200001": ("湖州市吴兴区红旗路198号", "0572-2023300", True),
    "H33050200002": ("湖州市吴兴区劳动路1558号", "0572-2181001", True),
    "H33050300001": ("湖州市南浔区南浔镇朝阳路666号", "0572-3029000", False),
    "P33050200001": ("湖州市吴兴区月河街道红旗路11号", "0572-2079966", False),
}


# where ``yibao serve`` listens unless told otherwise
BASE_URL = "http://127.0.0.1:8000"


def fixtures(base_url: str = BASE_URL) -> dict[str, Any]:
    """The demo's credentials and identifiers, machine-readably; the links
    on ``base_url``, where the server is reached."""
    persons = []
    for name, birth_div, birth, seq, div, phone, _clerk, card_body, pin, password in _PERSONS:
        persons.append(
            {
                "certno": make_resident_id(birth_div, birth, seq),
                "name": name,
                "account_no": _account(div, card_body),
                "password": password,
                "card_no": _card(card_body),
                "pin": pin,
                "division": div,
                "phone": phone,
            }
        )
    for p, phone_pin in zip(persons, _PHONE_PINS, strict=True):
        p["phone_pin"] = phone_pin  # the telephone line's PIN (issue 6)
    applicant = _APPLICANT
    return {
        "login": {"url": f"{base_url}/docs", "api": f"{base_url}/api/v1"},
        "persons": persons,
        "applicants": [
            {
                "certno": make_resident_id(applicant[1], applicant[2], applicant[3]),
                "name": applicant[0],
                "account_no": _account(applicant[4], 572000199),
                "division": applicant[4],
                "note": "applied at the Yuehe service point; the card is in production",
            }
        ],
        "terminals": [{"code": c, "location": loc, "division": d} for c, loc, d in TERMINALS],
        "institutions": [
            {
                "code": code,
                "name": name,
                "kind": kind,
                "level": level,
                "division": div,
                "secret": secret,
            }
            for code, name, kind, level, div, secret in _INSTITUTIONS
        ],
        "staff": [
            {
                "username": s["username"],
                "password": STAFF_PASSWORD,
                "name": s["name"],
                "role": str(s["role"]),
                "division": s["division"],
            }
            for s in STAFF
        ],
        "employers": [
            {
                "uscc": make_credit_code(a + b),
                "name": name,
                "division": div,
                # the employer channel's password, set at demo load (issue 15)
                "password": password,
            }
            for (a, b, name, div), password in zip(_EMPLOYERS, _EMPLOYER_PASSWORDS, strict=True)
        ],
        "catalogue": [
            {"code": code, "name": name, "category": cat, "price": price / 100}
            for code, name, cat, _share, price in CATALOGUE + MORE_CATALOGUE
        ],
    }


def is_loaded(uow: UnitOfWork) -> bool:
    return uow.session.get(DemoMarker, MARKER) is not None


# Contribution rules of Huzhou, as data: bases in fen per month, rates in
# basis points. Employer 7 %, employee 2 %, all of the employee's part to the
# individual account; retirees get 80 yuan a month; residents pay 380 a year.
RULE = {
    "base_floor": 4_200_00,
    "base_ceiling": 21_000_00,
    "employer_rate_bp": 700,
    "individual_rate_bp": 200,
    "account_share_bp": 10000,
    "retiree_monthly_credit": 80_00,
    "resident_annual_premium": 380_00,
    "grace_months": 3,
}

# person index -> (scheme role, employer index or None, monthly base in fen)
_ENROL = {
    0: ("employee", 0, 8_500_00),
    1: ("employee", 0, 6_200_00),
    2: ("employee", 1, 7_000_00),
    3: ("flexible", None, 4_200_00),
    4: ("retiree", None, 0),
    5: ("employee", 1, 5_000_00),
}
# The second employer stopped paying three months ago: in arrears.
_ARREARS_EMPLOYER = 1
_ARREARS_MONTHS = 3


def _history(uow: UnitOfWork, system: Actor, data: dict[str, Any], months: list[int]) -> None:
    from yibao.services.contributions import contributions as cs
    from yibao.store.models import Employer, Person

    today = uow.clock.today()
    for year in range(months[0] // 100, today.year + 2):
        for insutype in (cs.EMPLOYEE, cs.RESIDENT):
            cs.set_rule(
                uow,
                actor=system,
                channel=Channel.CLI,
                area="330500",
                year=year,
                insutype=insutype,
                **RULE,
            )
    employers = [
        uow.session.execute(select(Employer).where(Employer.uscc == e["uscc"])).scalar_one()
        for e in data["employers"]
    ]
    start = dt.date(months[0] // 100, months[0] % 100, 1)
    for index, (psn_type, emp_index, base) in _ENROL.items():
        person = uow.session.execute(
            select(Person).where(Person.certno == data["persons"][index]["certno"])
        ).scalar_one()
        enrolment = cs.enrol(
            uow,
            actor=system,
            channel=Channel.CLI,
            person=person,
            insutype=cs.EMPLOYEE,
            psn_type=psn_type,
            start=start,
            base=base,
            employer=employers[emp_index] if emp_index is not None else None,
        )
        if emp_index is None:
            lines = cs.assess_person(
                uow, actor=system, channel=Channel.CLI, enrolment=enrolment, months=months
            )
            if psn_type == "flexible":
                for line in lines:  # paid month by month through the bank (seed 004)
                    cs.record_person_payment(
                        uow,
                        actor=system,
                        channel=Channel.CLI,
                        person=person,
                        lines=[line],
                        amount=line.employer_amount + line.individual_amount,
                        reference=f"BANK-{line.month}",
                        key=f"demo:{person.id}:{line.month}",
                    )
    paying_until = months[-1 - _ARREARS_MONTHS]
    for month in months:
        for index, employer in enumerate(employers[:2]):
            assessment = cs.assess_employer.step(
                uow, actor=system, channel=Channel.CLI, employer_uscc=employer.uscc, month=month
            )
            if index == _ARREARS_EMPLOYER and month > paying_until:
                continue
            cs.record_employer_payment.step(
                uow,
                actor=system,
                channel=Channel.CLI,
                employer_uscc=employer.uscc,
                month=month,
                amount=assessment.total,
                reference=f"BANK-{employer.id}-{month}",
                key=f"demo:{employer.uscc}:{month}",
            )
    cs.apply_suspensions.step(uow, actor=system, channel=Channel.CLI)


def demo_months(today: dt.date) -> list[int]:
    """From January two years back to last month."""
    from yibao.services.contributions import contributions as cs

    last = cs.month_of(today.replace(day=1) - dt.timedelta(days=1))
    return cs.months_between((today.year - 2) * 100 + 1, last)


def load(services: Services, *, credit: bool = True) -> bool:
    """Load the demo city once; returns False when it was already there.

    With ``credit`` the individual accounts are credited for every month of
    the history, as the monthly batch would have done."""
    from yibao.services.contributions import contributions as cs

    uow = services.uow()
    months = _load_city(uow)
    if months is None:
        return False
    if credit:
        from yibao.clock import CHINA

        for month in months:
            # credited early the following month, as the monthly batch would have
            nm = cs.next_month(month)
            when = dt.datetime(nm // 100, nm % 100, 5, 2, 0, tzinfo=CHINA)
            cs.post_month(
                services.engine,
                month=month,
                now=min(when, services.clock.now()),
                backend=services.backend,
            )
    return True


@use_case
def _load_city(uow: UnitOfWork) -> list[int] | None:
    """The city in one transaction: all of it or nothing; None when it is
    there already. Returns the months of its contribution history."""
    from yibao.services.contributions import contributions as cs

    if is_loaded(uow):
        return None
    months = demo_months(uow.clock.today())
    system = Actor.system("demo-loader")
    data = fixtures()
    for code, name, name_en, sp in DIVISIONS:
        registry.add_division.step(uow, code=code, name=name, name_en=name_en, service_point=sp)
    staff_actors: dict[str, Actor] = {}
    for s in STAFF:
        user = access_service.create_staff.step(
            uow,
            actor=system,
            channel=Channel.CLI,
            username=s["username"],
            name=s["name"],
            password=STAFF_PASSWORD,
            role=s["role"],
            division_code=s["division"],
        )
        staff_actors[user.username] = access_service.actor_of(user)
    for e in data["employers"]:
        employer = registry.register_employer.step(
            uow,
            actor=system,
            channel=Channel.CLI,
            uscc=e["uscc"],
            name=e["name"],
            division_code=e["division"],
        )
        employer_login.set_password(uow, employer=employer, password=e["password"])
    for i in data["institutions"]:
        registry.register_institution.step(
            uow,
            actor=system,
            channel=Channel.CLI,
            code=i["code"],
            name=i["name"],
            kind=i["kind"],
            level=i["level"],
            division_code=i["division"],
            access_secret=i["secret"],
        )
        address, telephone, offsite = _INSTITUTION_PUBLIC[i["code"]]
        directory.change_institution.step(
            uow,
            actor=system,
            channel=Channel.CLI,
            code=i["code"],
            address=address,
            telephone=telephone,
            offsite=offsite,
        )
    from yibao.services import security

    for p in data["persons"]:
        person = registry.register_person.step(
            uow,
            actor=system,
            channel=Channel.CLI,
            certno=p["certno"],
            name=p["name"],
            division_code=p["division"],
            phone=p["phone"],
            account_no=p["account_no"],
        )
        person.portal_password_hash = security.hash_secret(p["password"])
    _history(uow, system, data, months)
    for spec, p in zip(_PERSONS, data["persons"], strict=True):
        card_service.apply_for_card.step(
            uow,
            actor=staff_actors[spec[6]],
            channel=Channel.COUNTER,
            path=Path.COUNTY_CENTER,
            certno=p["certno"],
            materials=["id_card", "photo", "household_register"],
            pin=p["pin"],
            card_no=p["card_no"],
        )
    _phone_pins(uow, system, data)
    a = data["applicants"][0]
    applicant = registry.register_person.step(
        uow,
        actor=system,
        channel=Channel.CLI,
        certno=a["certno"],
        name=a["name"],
        division_code=a["division"],
        phone=_APPLICANT[5],
        account_no=a["account_no"],
    )
    # a resident who paid this year's premium and then applied for a card
    year_start = months[-1] // 100 * 100 + 1
    enrolment = cs.enrol(
        uow,
        actor=system,
        channel=Channel.CLI,
        person=applicant,
        insutype=cs.RESIDENT,
        psn_type="resident",
        start=dt.date(year_start // 100, 1, 1),
    )
    lines = cs.assess_person(
        uow,
        actor=system,
        channel=Channel.CLI,
        enrolment=enrolment,
        months=cs.months_between(year_start, months[-1]),
    )
    cs.record_person_payment(
        uow,
        actor=system,
        channel=Channel.CLI,
        person=applicant,
        lines=lines,
        amount=sum(x.individual_amount for x in lines),
        reference="BANK-RESIDENT",
        key=f"demo:resident:{applicant.id}",
    )
    card_service.apply_for_card.step(
        uow,
        actor=staff_actors["yuehe"],
        channel=Channel.COUNTER,
        path=Path.SERVICE_POINT,
        certno=a["certno"],
        materials=["id_card", "photo"],
    )
    _benefits(uow, system, months)
    _web_channels(uow, system)
    enrolment_service.set_collection_account.step(
        uow, actor=system, channel=Channel.CLI, area="330500", **enrolment_service.DEMO_PAYEE
    )
    uow.session.add(DemoMarker(name=MARKER, loaded_at=uow.clock.now()))
    return months


def existing(uow: UnitOfWork) -> list[str]:
    return list(uow.session.execute(select(DemoMarker.name)).scalars())


# ---- telephone (issue 6): each demo person's telephone-inquiry PIN
_PHONE_PINS = ["802461", "913572", "124683", "235794", "346805", "457916"]


def _phone_pins(uow: UnitOfWork, system: Actor, data: dict[str, Any]) -> None:
    from yibao.services.access import phone_pin
    from yibao.store.models import Person

    for p in data["persons"]:
        person = uow.session.execute(
            select(Person).where(Person.certno == p["certno"])
        ).scalar_one()
        phone_pin.set_phone_pin.step(
            uow, actor=system, channel=Channel.CLI, person_id=person.id, pin=p["phone_pin"]
        )


# ---- settlement (issue 4): the catalogue and benefit policy of Huzhou, as data

# code, name, category (A fully covered, B with a self-pay share, C self-paid),
# self-pay share of a B item in basis points, reference price in fen
CATALOGUE: list[tuple[str, str, str, int, int]] = [
    ("001101000010000", "普通门诊诊查费", "A", 0, 10_00),
    ("250101001", "血常规检查", "A", 0, 20_00),
    ("XJ01CAA040A001", "阿莫西林胶囊 0.25g*24粒", "A", 0, 12_50),
    ("XA02BCA211E001", "奥美拉唑肠溶胶囊 20mg*14粒", "B", 1000, 28_60),
    ("ZA12CAD0056010", "复方丹参滴丸 27mg*180丸", "B", 500, 35_00),
    ("C00000000001", "医用护理口罩（目录外）", "C", 0, 5_00),
]

# more of it, for the public look-ups to show (issue 16)
MORE_CATALOGUE: list[tuple[str, str, str, int, int]] = [
    ("001102000010000", "急诊诊查费", "A", 0, 15_00),
    ("001103000010000", "副主任医师门诊诊查费", "A", 0, 25_00),
    ("250102001", "尿常规检查", "A", 0, 10_00),
    ("250301001", "肝功能检测", "A", 0, 60_00),
    ("250302001", "肾功能检测", "A", 0, 45_00),
    ("210102001", "胸部X线摄影", "A", 0, 80_00),
    ("220201001", "腹部彩色多普勒超声", "B", 1000, 150_00),
    ("210300001", "头颅CT平扫", "B", 1000, 260_00),
    ("210400001", "膝关节磁共振平扫", "B", 2000, 550_00),
    ("310701001", "常规心电图检查", "A", 0, 25_00),
    ("XC09AAE056A001", "卡托普利片 25mg*100片", "A", 0, 8_20),
    ("XA10BAA046A001", "盐酸二甲双胍片 0.5g*60片", "A", 0, 14_50),
    ("XC10AAA198A001", "阿托伐他汀钙片 20mg*7片", "A", 0, 18_80),
    ("XC08CAA025A001", "硝苯地平缓释片 20mg*30片", "A", 0, 16_40),
    ("XJ01DCA018A001", "头孢呋辛酯片 0.25g*12片", "A", 0, 22_30),
    ("XR06AEA041A001", "氯雷他定片 10mg*6片", "A", 0, 9_90),
    ("XN02BEA002A001", "对乙酰氨基酚片 0.5g*20片", "A", 0, 4_60),
    ("XB01ACA056A001", "阿司匹林肠溶片 100mg*30片", "A", 0, 15_20),
    ("XA10AEA051B001", "甘精胰岛素注射液 3ml:300单位", "B", 500, 165_00),
    ("XL01XEA038A001", "甲磺酸伊马替尼片 0.1g*60片", "B", 3000, 1_890_00),
    ("XN06ABA056A001", "盐酸舍曲林片 50mg*14片", "B", 1000, 42_60),
    ("XM01AEA149A001", "布洛芬缓释胶囊 0.3g*20粒", "A", 0, 11_80),
    ("ZA04AAL0049010", "连花清瘟胶囊 0.35g*24粒", "B", 500, 14_80),
    ("ZA09BAC0221010", "六味地黄丸 200丸", "B", 1000, 19_50),
    ("ZA06BAS0021010", "板蓝根颗粒 10g*20袋", "A", 0, 12_00),
    ("C00000000002", "医用冷敷贴（目录外）", "C", 0, 25_00),
    ("C00000000003", "保健按摩（目录外）", "C", 0, 80_00),
    ("C00000000004", "美容洁牙（目录外）", "C", 0, 150_00),
]

# scheme -> (annual deductible, annual fund cap, fund ratio by institution level), fen/bp
BENEFITS: dict[str, tuple[int, int, dict[str, int]]] = {
    "310": (300_00, 200_000_00, {"0": 8000, "1": 8500, "2": 8000, "3": 7500}),
    "390": (500_00, 100_000_00, {"0": 6000, "1": 6500, "2": 6000, "3": 5500}),
}


def _benefits(uow: UnitOfWork, system: Actor, months: list[int]) -> None:
    from yibao.services.settlement import policy

    for code, name, category, share, price in CATALOGUE + MORE_CATALOGUE:
        directory.set_catalogue_item.step(
            uow,
            actor=system,
            channel=Channel.CLI,
            area="330500",
            code=code,
            name=name,
            category=category,
            selfpay_bp=share,
            price=price,
        )
    for year in range(months[0] // 100, uow.clock.today().year + 2):
        for insutype, (deductible, cap, ratios) in BENEFITS.items():
            policy.set_policy.step(
                uow,
                actor=system,
                channel=Channel.CLI,
                insutype=insutype,
                area="330500",
                year=year,
                deductible=deductible,
                fund_cap=cap,
                ratios=ratios,
            )


# ---- web channels (issue 5): self-service terminals in hospital lobbies
TERMINALS = [
    ("T-HZZX-01", "湖州市中心医院门诊大厅 / Huzhou Central Hospital, outpatient lobby", "330502"),
    ("T-NXRM-01", "南浔区人民医院一楼大厅 / Nanxun People's Hospital, ground floor", "330503"),
]


DEMO_TERMINAL = TERMINALS[0][0]


def terminal_activation(uow: UnitOfWork) -> IssuedCode | None:
    """For ``yibao serve``'s link: a fresh activation code for the demo's
    first terminal while no machine is bound to it; None once one is (a new
    code would unbind it: that is ``yibao kiosk issue``). Refused where the
    demo city is not loaded: a real terminal of that code keeps its code."""

    return _fresh_activation(uow)


@use_case
def _fresh_activation(uow: UnitOfWork) -> IssuedCode | None:
    from yibao.domain.errors import DomainError
    from yibao.services.access import terminals as kiosk

    if not is_loaded(uow):
        raise DomainError(
            code="demo.not_loaded",
            zh="未载入演示数据",
            en="the demo city is not loaded",
            status=404,
        )
    terminal = kiosk.get_terminal(uow, DEMO_TERMINAL)
    if terminal.device_hash is not None:
        return None
    issued: IssuedCode = kiosk.issue_code.step(
        uow, actor=Actor.system("demo"), channel=Channel.CLI, code=DEMO_TERMINAL
    )
    return issued


def _web_channels(uow: UnitOfWork, system: Actor) -> None:
    from yibao.services.access import terminals as kiosk

    for code, location, division in TERMINALS:
        kiosk.register_terminal.step(
            uow,
            actor=system,
            channel=Channel.CLI,
            code=code,
            location=location,
            division_code=division,
        )
