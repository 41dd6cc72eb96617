import io

import pytest
from openpyxl import Workbook

from tests.db.employees import add_employee
from tests.helpers import WUXING, YUEHE, new_certno
from yibao.domain.actors import Channel
from yibao.domain.cards import CardStatus
from yibao.domain.errors import DomainError
from yibao.services.cards import batches as batch_service

C = Channel.COUNTER
MATERIALS = ["letter_of_introduction", "handler_id_card"]


def upload(uow, demo, content, filename="staff.csv", **kw):
    args = dict(
        employer_uscc=demo["employers"][0]["uscc"],
        letter_ref="织里童装〔2026〕12号",
        handler_certno=new_certno(),
        handler_name="经办人",
        materials=MATERIALS,
    )
    args.update(kw)
    result = batch_service.upload_batch(
        uow, actor=WUXING, channel=C, filename=filename, content=content, **args
    )
    return result


def test_employer_upload_accepts_good_rows_and_names_the_bad_ones(uow, demo):
    uscc = demo["employers"][0]["uscc"]
    good = [add_employee(uow, uscc, name=f"员工{i}") for i in range(3)]
    elsewhere = add_employee(uow, uscc, division="330503001", name="外区")
    bad_check = good[0].certno[:-1] + ("1" if good[0].certno[-1] != "1" else "2")
    lines = [
        "身份证号码,姓名,电话",
        f"{good[0].certno},员工0,13800000000",  # row 2
        f"{bad_check},坏号,",  # row 3: check digit
        f"{good[1].certno},员工1,",  # row 4
        f"{good[1].certno},员工1,",  # row 5: duplicate of row 4
        f"{good[2].certno},别名,",  # row 6: name mismatch
        f"{elsewhere.certno},外区,",  # row 7: outside this center's area
        f"{new_certno()},未登记,",  # row 8: not registered
        # row 9: already has a card
        f"{demo['persons'][0]['certno']},{demo['persons'][0]['name']},",
        ",空号,",  # row 10
        "",
    ]
    result = upload(uow, demo, "\n".join(lines).encode())
    assert [r["row"] for r in result.accepted] == [2, 4]
    reasons = {r["row"]: (r["field"], r["reason"]) for r in result.rejected}
    assert set(reasons) == {3, 5, 6, 7, 8, 9, 10}
    assert "check character" in reasons[3][1]
    assert "row 4" in reasons[5][1]
    assert reasons[6][0] == "name"
    assert "your area" in reasons[7][1] and "your area" in reasons[8][1]
    assert "already has a card" in reasons[9][1]
    assert "required" in reasons[10][1]
    batch = result.batch
    assert (batch.total_rows, batch.accepted_rows, batch.rejected_rows) == (9, 2, 7)
    assert batch.status == "in_production"


def test_cards_go_to_the_employer_as_one_batch_and_handout_is_recorded(uow, demo):
    staff = [add_employee(uow, demo["employers"][0]["uscc"], name=f"批次{i}") for i in range(2)]
    csv = "certno,name\n" + "\n".join(f"{p.certno},{p.name}" for p in staff)
    result = upload(uow, demo, csv.encode())
    no = result.batch.batch_no
    batch_service.deliver_batch(uow, actor=WUXING, channel=C, batch_no=no)
    with uow:
        batch = batch_service.get_batch(uow, actor=WUXING, batch_no=no)
        cards = batch_service.batch_cards(uow, batch)
        assert batch.status == "delivered"
        assert {c.status for c in cards} == {CardStatus.READY} and {c.location for c in cards} == {
            "employer"
        }
    # a card with the employer is not collected at a counter
    from yibao.services.cards import cards as card_service

    with pytest.raises(DomainError) as err:
        card_service.collect_card(
            uow,
            actor=WUXING,
            channel=C,
            person_id=cards[0].person_id,
            card_no=cards[0].card_no,
            collector_certno=staff[0].certno,
        )
    assert err.value.code == "card.with_employer"
    for card in cards:
        out = batch_service.record_handout(
            uow, actor=WUXING, channel=C, batch_no=no, card_no=card.card_no
        )
        assert out.card.status == CardStatus.ISSUED and out.pin
    with uow:
        assert batch_service.get_batch(uow, actor=WUXING, batch_no=no).status == "completed"


def test_xlsx_upload_and_excel_numbers_are_named(uow, demo):
    p = add_employee(uow, demo["employers"][0]["uscc"], name="表格")
    book = Workbook()
    sheet = book.active
    sheet.append(["姓名", "身份证号码"])
    sheet.append(["表格", p.certno])
    sheet.append(["数字", 330502199005060000])
    buf = io.BytesIO()
    book.save(buf)
    result = upload(uow, demo, buf.getvalue(), filename="名单.xlsx")
    assert [r["row"] for r in result.accepted] == [2]
    assert result.rejected[0]["row"] == 3 and "as text" in result.rejected[0]["reason"]


def test_gb18030_csv_as_excel_saves_it(uow, demo):
    p = add_employee(uow, demo["employers"][0]["uscc"], name="编码")
    result = upload(uow, demo, f"身份证号码,姓名\n{p.certno},编码\n".encode("gb18030"))
    assert len(result.accepted) == 1


@pytest.mark.parametrize(
    ("content", "filename", "kw", "field"),
    [
        (b"certno,name\n", "a.csv", {}, "file"),
        (b"id,who\n1,2\n", "a.csv", {}, "file"),
        (b"", "a.csv", {}, "file"),
        (b"certno,name\nx,y\n", "a.pdf", {}, "file"),
        (b"PKnot-a-zip", "a.xlsx", {}, "file"),
        (b"certno,name\nx,y\n", "a.csv", {"letter_ref": " "}, "letter_ref"),
        (b"certno,name\nx,y\n", "a.csv", {"handler_certno": "123"}, "handler_certno"),
        (b"certno,name\nx,y\n", "a.csv", {"materials": ["handler_id_card"]}, "materials"),
    ],
)
def test_batch_level_problems_refuse_the_whole_upload(uow, demo, content, filename, kw, field):
    with pytest.raises(DomainError) as err:
        upload(uow, demo, content, filename=filename, **kw)
    assert err.value.field == field


def test_only_a_county_center_takes_employer_batches(uow, demo):
    with pytest.raises(DomainError) as err:
        batch_service.upload_batch(
            uow,
            actor=YUEHE,
            channel=C,
            employer_uscc=demo["employers"][0]["uscc"],
            letter_ref="x",
            handler_certno=new_certno(),
            handler_name="x",
            materials=MATERIALS,
            filename="a.csv",
            content=b"certno,name\n",
        )
    assert err.value.status == 403


def test_an_employer_does_not_hand_out_the_card_of_an_employee_whose_insurance_ended(uow, demo):
    """The hand-out is a collection: decided by domain.use like one at a counter."""
    from yibao.store.models import Card, Person

    staff = [add_employee(uow, demo["employers"][0]["uscc"], name=f"离世{i}") for i in range(2)]
    csv = "certno,name\n" + "\n".join(f"{p.certno},{p.name}" for p in staff)
    no = upload(uow, demo, csv.encode()).batch.batch_no
    batch_service.deliver_batch(uow, actor=WUXING, channel=C, batch_no=no)
    found = batch_service.read_batch(uow, actor=WUXING, channel=C, batch_no=no)
    gone = next(c for c in found.cards if c.person_id == staff[0].id)
    with uow:
        uow.session.get(Person, staff[0].id).status = "deceased"
        uow.commit()
    with pytest.raises(DomainError) as err:
        batch_service.record_handout(
            uow, actor=WUXING, channel=C, batch_no=no, card_no=gone.card_no
        )
    assert err.value.code == "person.deceased"
    with uow:
        assert uow.session.get(Card, gone.id).status == CardStatus.READY
