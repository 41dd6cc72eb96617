"""The public directory's service (issue 16): look-ups with filters and
paging, the staff's audited changes with their history, and the catalogue
file import with row-level errors."""

import io

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select

from tests.helpers import CITY, NANXUN, WUXING
from yibao.domain.actors import Channel
from yibao.domain.errors import DomainError
from yibao.services.directory import catalogue_import, directory
from yibao.store.models import AuditEntry, CatalogueItem, DirectoryChange

C = Channel.COUNTER


def audits(uow, action):
    with uow:
        return list(
            uow.session.execute(
                select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
            ).scalars()
        )


def catalogue_count(uow):
    with uow:
        return uow.session.execute(select(func.count()).select_from(CatalogueItem)).scalar_one()


# ---------------------------------------------------------------- look-ups


def test_institutions_by_area_kind_level_and_offsite(uow, demo):
    everything = directory.find_institutions(uow)
    assert everything.total == 4
    assert [i.code for i in everything.items] == sorted(i.code for i in everything.items)
    # an area takes every division below it: the city has all four, Nanxun one
    assert directory.find_institutions(uow, area="330500").total == 4
    nanxun = directory.find_institutions(uow, area="330503")
    assert [i.code for i in nanxun.items] == ["H33050300001"]
    assert nanxun.items[0].address.startswith("湖州市南浔区")
    pharmacies = directory.find_institutions(uow, kind="pharmacy")
    assert [i.level for i in pharmacies.items] == ["0"]
    assert directory.find_institutions(uow, kind="hospital", level="2").total == 2
    offsite = directory.find_institutions(uow, offsite=True)
    assert {i.code for i in offsite.items} == {"H33050200001", "H33050200002"}
    assert directory.find_institutions(uow, offsite=False).total == 2
    assert directory.find_institutions(uow, name="中心").items[0].code == "H33050200001"
    # another province has none
    assert directory.find_institutions(uow, area="110000").total == 0


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({"kind": "clinic"}, "kind"),
        ({"level": "9"}, "level"),
        ({"area": "33"}, "area"),
        ({"area": "abc"}, "area"),
        ({"page": 0}, "page"),
        ({"size": 101}, "size"),
    ],
)
def test_a_bad_look_up_names_its_field(uow, demo, args, field):
    with pytest.raises(DomainError) as refused:
        directory.find_institutions(uow, **args)
    assert refused.value.field == field


def test_catalogue_by_code_or_name_category_and_pages(uow, demo):
    whole = directory.find_catalogue(uow, size=100)
    assert whole.total == len(demo["catalogue"]) >= 30
    by_code = directory.find_catalogue(uow, q="250101")
    assert [i.name for i in by_code.items] == ["血常规检查"]
    by_name = directory.find_catalogue(uow, q="胶囊")
    assert by_name.total >= 3 and all("胶囊" in i.name for i in by_name.items)
    b_items = directory.find_catalogue(uow, category="B", size=100)
    assert b_items.total > 0 and all(i.selfpay_bp > 0 for i in b_items.items)
    # a county sees its city's catalogue; another province none of it
    assert directory.find_catalogue(uow, area="330502").total == whole.total
    assert directory.find_catalogue(uow, area="110101").total == 0
    # pages: every item once, in order, the last page short
    first = directory.find_catalogue(uow, size=10, page=1)
    last = directory.find_catalogue(uow, size=10, page=first.pages)
    assert first.pages == -(-whole.total // 10)
    assert len(first.items) == 10 and 1 <= len(last.items) <= 10
    seen = [
        i.code
        for p in range(1, first.pages + 1)
        for i in directory.find_catalogue(uow, size=10, page=p).items
    ]
    assert len(seen) == len(set(seen)) == whole.total
    # a wildcard typed is a character, not a pattern
    assert directory.find_catalogue(uow, q="%").total == 0
    with pytest.raises(DomainError) as refused:
        directory.find_catalogue(uow, category="D")
    assert refused.value.field == "category"


# ---------------------------------------------------------------- staff changes and history


def test_an_institution_change_is_kept_with_old_and_new_values_and_audited(uow, demo):
    view = directory.change_institution(
        uow,
        actor=CITY,
        channel=C,
        code="H33050300001",
        address="湖州市南浔区新址路1号",
        offsite=True,
        telephone="0572-3029000",  # unchanged: not in the history
    )
    assert view.offsite and view.address == "湖州市南浔区新址路1号"
    changes = directory.history(uow, actor=CITY, kind="institution", subject="H33050300001")
    assert len(changes) == 2  # the demo's loading, then this
    latest = changes[0]
    assert latest.actor_id == "admin" and latest.channel == C
    assert latest.changes == {
        "address": ["湖州市南浔区南浔镇朝阳路666号", "湖州市南浔区新址路1号"],
        "offsite": [False, True],
    }
    entry = audits(uow, "institution.change")[-1]
    assert entry.subject == "H33050300001" and entry.actor_id == "admin"
    assert entry.detail["changes"]["offsite"] == [False, True]
    # the public look-up shows it at once
    assert directory.find_institutions(uow, area="330503", offsite=True).total == 1
    # a change to nothing writes nothing
    before = len(audits(uow, "institution.change"))
    directory.change_institution(uow, actor=CITY, channel=C, code="H33050300001", offsite=True)
    assert len(audits(uow, "institution.change")) == before


def test_only_the_roles_that_keep_the_directory_change_it_and_only_in_their_area(uow, demo):
    with pytest.raises(DomainError) as refused:
        directory.change_institution(
            uow, actor=WUXING, channel=C, code="H33050200001", offsite=False
        )
    assert refused.value.status == 403
    with pytest.raises(DomainError) as refused:
        directory.set_catalogue_item(
            uow, actor=NANXUN, channel=C, area="330500", code="X1", name="x", category="A"
        )
    assert refused.value.status == 403
    with pytest.raises(DomainError) as refused:
        directory.set_catalogue_item(
            uow, actor=CITY, channel=C, area="110100", code="X1", name="x", category="A"
        )
    assert refused.value.status == 404
    with pytest.raises(DomainError) as refused:
        directory.change_institution(uow, actor=CITY, channel=C, code="H11010100001", address="x")
    assert refused.value.status == 404
    with pytest.raises(DomainError) as refused:
        directory.history(uow, actor=WUXING)
    assert refused.value.status == 403


def test_a_catalogue_item_is_created_then_changed_with_its_history(uow, demo):
    item = directory.set_catalogue_item(
        uow,
        actor=CITY,
        channel=C,
        area="330500",
        code="XTEST0001",
        name="测试片",
        category="B",
        selfpay_bp=1500,
        price=12_34,
    )
    assert (item.category, item.selfpay_bp, item.price) == ("B", 1500, 12_34)
    directory.set_catalogue_item(
        uow,
        actor=CITY,
        channel=C,
        area="330500",
        code="XTEST0001",
        name="测试片",
        category="A",
        selfpay_bp=0,
        price=12_34,
    )
    changes = directory.history(uow, actor=CITY, kind="catalogue", subject="330500/XTEST0001")
    assert [c.action for c in changes] == ["change", "create"]
    assert changes[0].changes == {"category": ["B", "A"], "selfpay_bp": [1500, 0]}
    assert changes[1].changes["price"] == [None, 12_34]
    assert [a.action for a in audits(uow, "catalogue.change")][-1:] == ["catalogue.change"]
    assert audits(uow, "catalogue.create")[-1].subject == "330500/XTEST0001"


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({"category": "D"}, "category"),
        ({"category": "B", "selfpay_bp": 0}, "selfpay_bp"),
        ({"category": "A", "selfpay_bp": 1000}, "selfpay_bp"),
        ({"price": -1}, "price"),
        ({"name": ""}, "name"),
        ({"code": "坏码"}, "code"),
    ],
)
def test_a_bad_catalogue_item_is_refused_naming_its_field(uow, demo, args, field):
    given = {"code": "XTEST0002", "name": "测试", "category": "A", "selfpay_bp": 0, "price": 100}
    given.update(args)
    before = catalogue_count(uow)
    with pytest.raises(DomainError) as refused:
        directory.set_catalogue_item(uow, actor=CITY, channel=C, area="330500", **given)
    assert refused.value.field == field
    assert catalogue_count(uow) == before


# ---------------------------------------------------------------- import

GOOD_AND_BAD = [
    "项目编码,项目名称,类别,先行自付比例,参考价格",
    "IMP0001,导入甲类,A,,12.50",  # row 2: good
    "IMP0002,导入乙类,乙,10,30",  # row 3: good (乙 = B, 10 %)
    "IMP0003,坏类别,D,,1",  # row 4: bad category
    "IMP0004,乙类无比例,B,,1",  # row 5: B without share
    "IMP0005,甲类有比例,A,5,1",  # row 6: non-B with share
    "IMP0006,坏价格,A,,十元",  # row 7: bad price
    "IMP0001,重复编码,A,,1",  # row 8: same code as row 2
    "IMP0007,,A,,1",  # row 9: no name
    "IMP0008,负价格,C,,-3",  # row 10: negative price
]


def test_import_writes_the_good_rows_and_names_each_bad_one(uow, demo):
    before = catalogue_count(uow)
    result = catalogue_import.import_catalogue(
        uow,
        actor=CITY,
        channel=C,
        area="330500",
        filename="catalogue.csv",
        content="\n".join(GOOD_AND_BAD).encode("utf-8"),
    )
    assert [r["row"] for r in result.accepted] == [2, 3]
    bad = {r["row"]: r["field"] for r in result.rejected}
    assert bad == {
        4: "category",
        5: "selfpay_pct",
        6: "selfpay_pct",
        7: "price",
        8: "code",
        9: "name",
        10: "price",
    }
    assert all(r["zh"] and r["en"] and r["status"] == "rejected" for r in result.rejected)
    assert "row 2" in next(r["en"] for r in result.rejected if r["row"] == 8)
    # nothing from a bad row: just the two good ones
    assert catalogue_count(uow) == before + 2
    found = directory.find_catalogue(uow, q="IMP", size=100)
    assert {(i.code, i.category, i.selfpay_bp, i.price) for i in found.items} == {
        ("IMP0001", "A", 0, 12_50),
        ("IMP0002", "B", 1000, 30_00),
    }
    # one audit per item written, one for the import
    assert {a.subject for a in audits(uow, "catalogue.create")} >= {
        "330500/IMP0001",
        "330500/IMP0002",
    }
    entry = audits(uow, "catalogue.import")[-1]
    assert entry.detail["accepted"] == 2 and entry.detail["rejected"] == 7
    with uow:
        kept = (
            uow.session.execute(
                select(DirectoryChange.subject).where(DirectoryChange.subject.like("330500/IMP%"))
            )
            .scalars()
            .all()
        )
    assert sorted(kept) == ["330500/IMP0001", "330500/IMP0002"]


def test_import_reads_xlsx_too(uow, demo):
    book = Workbook()
    sheet = book.active
    sheet.append(["code", "name", "category", "selfpay_pct", "price"])
    sheet.append(["XLS0001", "表格导入", "B", 20, 8.8])
    sheet.append(["XLS0002", "坏的", "B", 0, 8.8])
    buffer = io.BytesIO()
    book.save(buffer)
    result = catalogue_import.import_catalogue(
        uow, actor=CITY, channel=C, area="330500", filename="c.xlsx", content=buffer.getvalue()
    )
    assert [r["code"] for r in result.accepted] == ["XLS0001"]
    assert [(r["row"], r["field"]) for r in result.rejected] == [(3, "selfpay_pct")]
    item = directory.find_catalogue(uow, q="XLS0001").items[0]
    assert (item.selfpay_bp, item.price) == (2000, 8_80)


def test_import_without_a_required_column_writes_nothing(uow, demo):
    before = catalogue_count(uow)
    with pytest.raises(DomainError) as refused:
        catalogue_import.import_catalogue(
            uow,
            actor=CITY,
            channel=C,
            area="330500",
            filename="c.csv",
            content="项目编码,项目名称,参考价格\nIMP0100,缺类别,1\n".encode(),
        )
    assert refused.value.field == "category"
    assert "row 1" in refused.value.en
    assert catalogue_count(uow) == before
    assert audits(uow, "catalogue.import") == []


def test_import_needs_the_catalogue_permission(uow, demo):
    with pytest.raises(DomainError) as refused:
        catalogue_import.import_catalogue(
            uow,
            actor=WUXING,
            channel=C,
            area="330500",
            filename="c.csv",
            content="\n".join(GOOD_AND_BAD).encode(),
        )
    assert refused.value.status == 403
