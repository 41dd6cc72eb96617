"""The bureau's dashboard: the figures of a staff member's area for a period.

Every figure of one view is read in ONE transaction on a connection of its
own: on PostgreSQL under REPEATABLE READ and READ ONLY, so every statement
sees the same snapshot and a settlement committed while the view is read
is either in every figure or in none (the per-day totals, the per-level
totals and the per-county totals add up to the same sums). SQLite needs no
option: a transaction there reads one snapshot of the file, and the
engine's BEGIN takes the write lock (``store/db.py``), so no writer commits
between its statements.

Why a connection of its own and not the use case's session: the view is
audited, and appending to the audit log updates a chain head that any
settlement may have updated since the snapshot was taken; under REPEATABLE
READ that update would fail with a serialization error whenever the
bureau is busy. So the figures come from the snapshot, and the audit entry
is written by the use case's own transaction once they were read.

Scope (Social Insurance Law art. 7): a staff member sees their own area, a
city administrator the counties below it with a per-county breakdown, a
county clerk their county; an area outside their own is "not found". Only
counts and sums are shown, no person's data.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Engine,
    SQLColumnExpression,
    case,
    distinct,
    func,
    literal_column,
    select,
    text,
)
from sqlalchemy.orm import Session, lazyload

from yibao.clock import CHINA
from yibao.domain import reviews
from yibao.domain.access import Perm
from yibao.domain.actors import Actor, Channel
from yibao.domain.cards import CardStatus
from yibao.domain.divisions import Level, level_of, scope_prefix
from yibao.domain.errors import invalid, not_found
from yibao.domain.values import is_digits
from yibao.domain.workdays import WorkCalendar
from yibao.services.cards.cards import application_state
from yibao.services.tx import use_case
from yibao.store.models import (
    Assessment,
    AuditEntry,
    CalendarOverride,
    Card,
    CardApplication,
    Division,
    Employer,
    EnrolmentApplication,
    Institution,
    IvrCall,
    Person,
    Reconciliation,
    Settlement,
    SettlementRefusal,
)
from yibao.store.uow import UnitOfWork

DEFAULT_DAYS = 30
MAX_DAYS = 366

# Called between the first and the second statement of a view's read; None
# in service. The tests commit a settlement here to show that the snapshot
# keeps the totals whole.
between_reads: Callable[[], None] | None = None

LEVELS = {
    "0": ("药店", "pharmacy"),
    "1": ("一级医院", "grade 1 hospital"),
    "2": ("二级医院", "grade 2 hospital"),
    "3": ("三级医院", "grade 3 hospital"),
}
CHANNELS = {
    Channel.KIOSK: ("自助终端", "self-service terminal"),
    Channel.TELEPHONE: ("电话查询", "telephone line"),
}


# ---------------------------------------------------------------- the period


@dataclass(frozen=True)
class Period:
    start: dt.date
    end: dt.date  # inclusive

    @property
    def days(self) -> list[dt.date]:
        return [self.start + dt.timedelta(days=i) for i in range((self.end - self.start).days + 1)]

    @property
    def start_at(self) -> dt.datetime:
        return dt.datetime.combine(self.start, dt.time(), CHINA)

    @property
    def end_at(self) -> dt.datetime:  # exclusive
        return dt.datetime.combine(self.end + dt.timedelta(days=1), dt.time(), CHINA)


def period_of(start: dt.date | None, end: dt.date | None, today: dt.date) -> Period:
    """The period asked for: by default the last 30 days up to today (China
    time), never past today, at most 366 days."""
    end = end or today
    start = start or end - dt.timedelta(days=DEFAULT_DAYS - 1)
    if end > today:
        raise invalid("end", "结束日期不能晚于今天", "the end date is today or before", "future")
    if start > end:
        raise invalid(
            "start", "开始日期应不晚于结束日期", "the start is on or before the end", "order"
        )
    if (end - start).days + 1 > MAX_DAYS:
        raise invalid("start", "统计期间最长366天", "a period is at most 366 days long", "too_long")
    return Period(start, end)


# ---------------------------------------------------------------- the figures


@dataclass(frozen=True)
class Column:
    key: str
    zh: str
    en: str
    kind: str = "int"  # text, int, fen (money in fen), place (a division's (zh, en) names)

    def label(self, lang: str) -> str:
        return self.en if lang == "en" else self.zh

    def text(self, value: Any, lang: str) -> str:
        """A place's name in the language, the Chinese one where no other is kept."""
        zh, en = value
        return str((en or zh) if lang == "en" else zh)


@dataclass
class Figure:
    """One figure: a title and a table; a chart draws from its columns."""

    key: str
    zh: str
    en: str
    columns: tuple[Column, ...]
    rows: list[tuple[Any, ...]] = field(default_factory=list)

    def title(self, lang: str) -> str:
        return self.en if lang == "en" else self.zh

    def index(self, key: str) -> int:
        return next(i for i, c in enumerate(self.columns) if c.key == key)

    def total(self, key: str) -> int:
        i = self.index(key)
        return sum(int(r[i] or 0) for r in self.rows)

    def values(self, key: str) -> list[Any]:
        i = self.index(key)
        return [r[i] for r in self.rows]


def _col(key: str, zh: str, en: str, kind: str = "int") -> Column:
    return Column(key, zh, en, kind)


_AMOUNTS = (
    _col("count", "结算笔数", "settlements"),
    _col("medfee", "医疗费总额(元)", "medical fees (yuan)", "fen"),
    _col("fund", "基金支付(元)", "fund paid (yuan)", "fen"),
    _col("acct", "个人账户支付(元)", "account paid (yuan)", "fen"),
    _col("cash", "现金支付(元)", "cash paid (yuan)", "fen"),
)

# the figures of the dashboard, in the order it shows them
FIGURES = (
    "daily",
    "hourly",
    "levels",
    "refusals",
    "cards",
    "reviews",
    "arrears",
    "channels",
    "reconciliation",
    "counties",
)


@dataclass
class Dashboard:
    area: str
    area_zh: str
    area_en: str
    period: Period
    as_of: dt.datetime
    isolation: str  # how the snapshot was read
    figures: dict[str, Figure]

    def area_name(self, lang: str) -> str:
        return (self.area_en or self.area_zh) if lang == "en" else self.area_zh


# ---------------------------------------------------------------- reading


@contextmanager
def snapshot(uow: UnitOfWork) -> Iterator[tuple[Session, str]]:
    """A read-only session on a connection of its own, one transaction: one
    snapshot for every statement (see the module's comment)."""
    engine = uow.session.get_bind()
    assert isinstance(engine, Engine)  # runtime.Services binds sessions to its engine
    with engine.connect() as conn:
        postgres = conn.dialect.name == "postgresql"
        if postgres:
            conn.execution_options(isolation_level="REPEATABLE READ")
        with Session(bind=conn) as session, session.begin():
            if postgres:
                session.execute(text("SET TRANSACTION READ ONLY"))
                level = str(session.execute(text("SHOW transaction_isolation")).scalar_one())
            else:
                level = "sqlite"
            yield session, level


def _in(column: SQLColumnExpression[str], prefix: str) -> ColumnElement[bool]:
    if not prefix:
        return column.is_not(None)
    return column.startswith(prefix, autoescape=True)


def _hour(session: Session, column: Any) -> Any:
    """The UTC hour a timestamp falls in, as the database can group by it."""
    if session.get_bind().dialect.name == "postgresql":
        return func.date_trunc(literal_column("'hour'"), func.timezone("UTC", column))
    return func.substr(column, 1, 13)  # SQLite keeps UTC as 'YYYY-MM-DD HH:MM:SS.ffffff'


def _china_hour(value: Any) -> dt.datetime:
    if isinstance(value, str):
        return dt.datetime.strptime(value[:13] + "+0000", "%Y-%m-%d %H%z").astimezone(CHINA)
    assert isinstance(value, dt.datetime)
    return value.replace(tzinfo=dt.UTC).astimezone(CHINA)


def _county(code: str) -> str:
    return code[:6]


def read_figures(
    session: Session, *, prefix: str, period: Period, today: dt.date
) -> dict[str, Figure]:
    """Every figure of the area whose codes start with ``prefix``, from one
    session (one snapshot)."""
    start_at, end_at = period.start_at, period.end_at
    names = {
        code: (zh, en)
        for code, zh, en in session.execute(
            select(Division.code, Division.name, Division.name_en).where(_in(Division.code, prefix))
        )
    }
    counties = sorted(
        code
        for (code,) in session.execute(
            select(Division.code).where(_in(Division.code, prefix), Division.level == "county")
        )
    )
    by_county: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    figures: dict[str, Figure] = {}

    # ---- settlements: per day, per hour of day, by institution level
    hour = _hour(session, Settlement.setl_time)
    amounts = (
        func.count(Settlement.id),
        func.coalesce(func.sum(Settlement.medfee_sumamt), 0),
        func.coalesce(func.sum(Settlement.fund_pay_sumamt), 0),
        func.coalesce(func.sum(Settlement.acct_pay), 0),
        func.coalesce(func.sum(Settlement.psn_cash_pay), 0),
    )
    settled = (
        Settlement.status == "settled",
        Settlement.setl_time >= start_at,
        Settlement.setl_time < end_at,
        _in(Institution.division_code, prefix),
    )
    daily: dict[dt.date, list[int]] = {d: [0] * 5 for d in period.days}
    hourly: dict[int, list[int]] = {h: [0] * 5 for h in range(24)}
    levels: dict[str, list[int]] = {lv: [0] * 5 for lv in LEVELS}
    for bucket, level, *sums in session.execute(
        select(hour, Institution.level, *amounts)
        .join(Institution, Institution.code == Settlement.institution_code)
        .where(*settled)
        .group_by(hour, Institution.level)
    ):
        at = _china_hour(bucket)
        for target in (daily[at.date()], hourly[at.hour], levels.setdefault(level, [0] * 5)):
            for i, v in enumerate(sums):
                target[i] += int(v)
    if between_reads is not None:
        between_reads()
    figures["daily"] = Figure(
        "daily",
        "每日结算",
        "Settlements per day",
        (_col("day", "日期", "day", "text"), *_AMOUNTS),
        [(d.isoformat(), *v) for d, v in daily.items()],
    )
    figures["hourly"] = Figure(
        "hourly",
        "各时段结算（北京时间）",
        "Settlements by hour of day (China time)",
        (_col("hour", "时段", "hour", "text"), *_AMOUNTS),
        [(f"{h:02d}:00", *v) for h, v in hourly.items()],
    )
    figures["levels"] = Figure(
        "levels",
        "按机构级别的基金、账户和现金支付",
        "Fund, account and cash paid by institution level",
        (_col("level", "机构级别", "institution level", "text"), *_AMOUNTS),
        [(lv, *v) for lv, v in sorted(levels.items())],
    )

    # the per-county totals: a second statement, the same snapshot
    county = func.substr(Institution.division_code, 1, 6)
    for code, count, medfee in session.execute(
        select(county, amounts[0], amounts[1])
        .join(Institution, Institution.code == Settlement.institution_code)
        .where(*settled)
        .group_by(county)
    ):
        by_county[code]["settlements"] += int(count)
        by_county[code]["medfee"] += int(medfee)

    # ---- refusals by reason
    refusals: dict[str, int] = defaultdict(int)
    for code, area, count in session.execute(
        select(SettlementRefusal.code, SettlementRefusal.area, func.count(SettlementRefusal.id))
        .where(
            SettlementRefusal.at >= start_at,
            SettlementRefusal.at < end_at,
            _in(SettlementRefusal.area, prefix),
        )
        .group_by(SettlementRefusal.code, SettlementRefusal.area)
    ):
        refusals[code] += int(count)
        by_county[_county(area)]["refusals"] += int(count)
    figures["refusals"] = Figure(
        "refusals",
        "结算拒付原因",
        "Settlements refused, by reason",
        (_col("reason", "原因代码", "reason code", "text"), _col("count", "次数", "refusals")),
        sorted(refusals.items(), key=lambda kv: (-kv[1], kv[0])),
    )

    # ---- service points' card SLA (open applications only)
    sla: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    open_cards = (CardStatus.APPLIED, CardStatus.IN_PRODUCTION, CardStatus.READY)
    for app, card in session.execute(
        select(CardApplication, Card)
        .join(Card, Card.application_id == CardApplication.id)
        .where(
            Card.status.in_([s.value for s in open_cards]),
            _in(CardApplication.division_code, prefix),
        )
        .options(lazyload(CardApplication.person), lazyload(Card.person))
    ):
        state = application_state(app, card, today)
        slot = {"in_progress": 0, "awaiting_pickup": 0, "overdue": 1, "pickup_overdue": 1}.get(
            state, 2 if state == "returned_to_center" else -1
        )
        if slot >= 0:
            sla[app.division_code][slot] += 1
        if slot in (1, 2):
            by_county[_county(app.division_code)]["cards_overdue"] += 1
    figures["cards"] = Figure(
        "cards",
        "服务点办卡时限",
        "Service points' card deadlines",
        (
            _col("office", "受理点代码", "office code", "text"),
            _col("name", "受理点", "office", "place"),
            _col("due", "在期限内", "within the deadline"),
            _col("overdue", "已逾期", "overdue"),
            _col("returned", "逾期未领退回", "returned after the pickup window"),
        ),
        [(code, names.get(code, ("", "")), *v) for code, v in sorted(sla.items())],
    )

    # ---- enrolment reviews waiting or overdue
    workdays = WorkCalendar(
        {r.day: (r.is_workday, r.note) for r in session.execute(select(CalendarOverride)).scalars()}
    )
    waiting: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for submitted_at, division in session.execute(
        select(EnrolmentApplication.submitted_at, Person.division_code)
        .join(Person, Person.id == EnrolmentApplication.person_id)
        .where(EnrolmentApplication.status == "submitted", _in(Person.division_code, prefix))
    ):
        filed = submitted_at.astimezone(CHINA).date()
        row = waiting[_county(division)]
        row[0] += 1
        row[1] += reviews.review_overdue(filed, today, workdays.is_workday)
    for code, (w, o) in waiting.items():
        by_county[code]["reviews_waiting"] += w
        by_county[code]["reviews_overdue"] += o
    figures["reviews"] = Figure(
        "reviews",
        "待审核的参保申请",
        "Enrolment applications waiting for review",
        (
            _col("county", "区县代码", "county code", "text"),
            _col("name", "区县", "county", "place"),
            _col("waiting", "待审核", "waiting"),
            _col("overdue", "已逾期", "overdue"),
        ),
        [(code, names.get(code, ("", "")), *v) for code, v in sorted(waiting.items())],
    )

    # ---- employers in arrears
    owed = Assessment.employer_total + Assessment.individual_total - Assessment.paid_total
    arrears = []
    for uscc, name, division, months, amount, oldest in session.execute(
        select(
            Employer.uscc,
            Employer.name,
            Employer.division_code,
            func.count(Assessment.id),
            func.sum(owed),
            func.min(Assessment.month),
        )
        .join(Employer, Employer.id == Assessment.employer_id)
        .where(
            Assessment.status != "paid",
            Assessment.due_date < today,
            _in(Employer.division_code, prefix),
        )
        .group_by(Employer.uscc, Employer.name, Employer.division_code)
    ):
        arrears.append((uscc, name, division[:6], int(months), str(oldest), int(amount)))
        by_county[division[:6]]["arrears_employers"] += 1
        by_county[division[:6]]["arrears_amount"] += int(amount)
    figures["arrears"] = Figure(
        "arrears",
        "欠缴单位",
        "Employers in arrears",
        (
            _col("uscc", "统一社会信用代码", "credit code", "text"),
            _col("name", "单位名称", "employer", "text"),
            _col("county", "区县代码", "county code", "text"),
            _col("months", "欠缴月数", "months in arrears"),
            _col("oldest", "最早欠缴月份", "oldest month", "text"),
            _col("amount", "欠缴金额(元)", "owed (yuan)", "fen"),
        ),
        sorted(arrears, key=lambda r: (-r[5], r[0])),
    )

    # ---- terminal and telephone use: the audited reads of those channels
    point = case((AuditEntry.channel == Channel.KIOSK, AuditEntry.actor_id), else_="")
    use = []
    for channel, where, count, persons in session.execute(
        select(
            AuditEntry.channel,
            point,
            func.count(AuditEntry.id),
            func.count(distinct(AuditEntry.person_id)),
        )
        .where(
            AuditEntry.channel.in_([Channel.KIOSK, Channel.TELEPHONE]),
            AuditEntry.at >= start_at,
            AuditEntry.at < end_at,
            _in(AuditEntry.actor_division, prefix),
        )
        .group_by(AuditEntry.channel, point)
    ):
        use.append([channel, where, int(count), int(persons), None])
    calls = session.execute(
        select(func.count(IvrCall.id))
        .join(Person, Person.id == IvrCall.person_id)
        .where(
            IvrCall.started_at >= start_at,
            IvrCall.started_at < end_at,
            _in(Person.division_code, prefix),
        )
    ).scalar_one()
    phone = next((r for r in use if r[0] == Channel.TELEPHONE), None)
    if phone is None and calls:
        phone = [Channel.TELEPHONE, "", 0, 0, None]
        use.append(phone)
    if phone is not None:
        phone[4] = int(calls)
    figures["channels"] = Figure(
        "channels",
        "自助终端和电话使用",
        "Terminal and telephone use",
        (
            _col("channel", "渠道", "channel", "text"),
            _col("point", "终端编号", "terminal", "text"),
            _col("inquiries", "查询次数", "inquiries"),
            _col("persons", "人数", "persons"),
            _col("calls", "通话数（已验证身份）", "calls (caller proven)"),
        ),
        [tuple(r) for r in sorted(use, key=lambda r: (str(r[0]), str(r[1])))],
    )

    # ---- reconciliation (3201) differences by institution
    recon: dict[str, list[Any]] = {}
    for r, inst_name in session.execute(
        select(Reconciliation, Institution.name)
        .outerjoin(Institution, Institution.code == Reconciliation.institution_code)
        .where(
            Reconciliation.at >= start_at,
            Reconciliation.at < end_at,
            _in(Reconciliation.area, prefix),
        )
        .order_by(Reconciliation.at, Reconciliation.id)
    ):
        new: list[Any] = [r.institution_code, inst_name or "", 0, 0]
        row = recon.setdefault(r.institution_code, new)
        row[2] += 1
        if not r.balanced:
            row[3] += 1
            # the latest difference found, each as the institution's minus ours
            latest: list[Any] = [
                f"{r.begin_date.isoformat()}~{r.end_date.isoformat()}",
                r.given_count - r.our_count,
                r.given_medfee - r.our_medfee,
                r.given_fund - r.our_fund,
                r.given_acct - r.our_acct,
            ]
            row[4:] = latest
    figures["reconciliation"] = Figure(
        "reconciliation",
        "对账（3201）差异",
        "Reconciliation (3201) differences by institution",
        (
            _col("institution", "机构编码", "institution code", "text"),
            _col("name", "机构名称", "institution", "text"),
            _col("checks", "对账次数", "reconciliations"),
            _col("unbalanced", "不一致次数", "with differences"),
            _col("period", "最近差异的对账期", "latest difference: period", "text"),
            _col("count_diff", "笔数差", "count difference"),
            _col("medfee_diff", "医疗费差(元)", "fees difference (yuan)", "fen"),
            _col("fund_diff", "基金差(元)", "fund difference (yuan)", "fen"),
            _col("acct_diff", "账户差(元)", "account difference (yuan)", "fen"),
        ),
        [tuple(row + [None] * (9 - len(row))) for _, row in sorted(recon.items())],
    )

    # ---- the per-county breakdown
    keys = (
        "settlements",
        "medfee",
        "refusals",
        "cards_overdue",
        "reviews_waiting",
        "reviews_overdue",
        "arrears_employers",
        "arrears_amount",
    )
    shown = sorted(set(counties) | {c for c in by_county if c.startswith(prefix)})
    figures["counties"] = Figure(
        "counties",
        "分区县",
        "By county",
        (
            _col("county", "区县代码", "county code", "text"),
            _col("name", "区县", "county", "place"),
            _col("settlements", "结算笔数", "settlements"),
            _col("medfee", "医疗费总额(元)", "medical fees (yuan)", "fen"),
            _col("refusals", "拒付次数", "refusals"),
            _col("cards_overdue", "逾期办卡", "cards overdue"),
            _col("reviews_waiting", "待审核", "reviews waiting"),
            _col("reviews_overdue", "审核逾期", "reviews overdue"),
            _col("arrears_employers", "欠缴单位数", "employers in arrears"),
            _col("arrears_amount", "欠缴金额(元)", "arrears (yuan)", "fen"),
        ),
        [(code, names.get(code, ("", "")), *(by_county[code][k] for k in keys)) for code in shown],
    )
    return figures


def _area(actor: Actor, area: str | None) -> str:
    """The area of the view: the actor's own, or a division inside it at
    county level or above; any other reads as not found."""
    if not area:
        return actor.division
    area = area.strip()
    if len(area) != 6 or not is_digits(area):
        raise invalid("area", "地区应为6位行政区划代码", "the area is a 6-digit division code")
    if level_of(area) is Level.STREET or not actor.sees(area):
        raise not_found("统计地区", "area", "report.area_not_found")
    return area


@use_case
def dashboard(
    uow: UnitOfWork,
    *,
    actor: Actor,
    channel: str,
    start: dt.date | None = None,
    end: dt.date | None = None,
    area: str | None = None,
    download: tuple[str, str] | None = None,
) -> Dashboard:
    """Every figure of the actor's area (or of ``area`` inside it) for the
    period, from one snapshot; audited as a view, or as the download of one
    figure (``download``: its key and the file's format)."""
    actor.require(Perm.REPORT_READ)
    where = _area(actor, area)
    if download is not None and download[0] not in FIGURES:
        raise not_found("统计项", "figure", "report.figure_not_found")
    today = uow.clock.today()
    period = period_of(start, end, today)
    # nothing is read in the use case's own session before the snapshot: on
    # SQLite its BEGIN would hold the lock the snapshot's BEGIN waits for
    with snapshot(uow) as (session, isolation):
        division = session.get(Division, where)
        if division is None:
            raise not_found("统计地区", "area", "report.area_not_found")
        area_zh, area_en = division.name, division.name_en
        figures = read_figures(session, prefix=scope_prefix(where), period=period, today=today)
    detail: dict[str, object] = {
        "area": where,
        "start": period.start.isoformat(),
        "end": period.end.isoformat(),
    }
    if download is not None:
        detail["figure"], detail["format"] = download
    uow.audit(
        actor.record(
            channel=channel,
            action="report.download" if download else "report.view",
            subject=where,
            detail=detail,
        )
    )
    return Dashboard(
        area=where,
        area_zh=area_zh,
        area_en=area_en,
        period=period,
        as_of=uow.clock.now(),
        isolation=isolation,
        figures=figures,
    )
