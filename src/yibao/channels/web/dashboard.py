"""The bureau's dashboard under /counter/dashboard/ (issue 17): the figures
of the staff member's area with a chart and a table each, and every figure
as CSV and XLSX at /counter/dashboard/<figure>.csv|.xlsx. The counter's
log-in; who may see what, and the numbers, are ``services/reporting``'s:
this page reads the query, calls the one use case and renders."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from openpyxl import Workbook
from openpyxl.styles import Font

from yibao.channels.web import forms
from yibao.channels.web.common import channel_route, error_text, lang_of, services_of
from yibao.channels.web.counter import _clerk, _page
from yibao.clock import CHINA
from yibao.domain.actors import Channel
from yibao.domain.errors import DomainError
from yibao.services.reporting import dashboard as reporting

TEMPLATE = "counter/dashboard.html"
FORMATS = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
# the figures drawn as a chart: the column the bars show
CHARTS = {
    "daily": "count",
    "hourly": "count",
    "refusals": "count",
    "counties": "settlements",
}


def yuan(fen: Any) -> str:
    """Fen as yuan with two decimals, as the pages show money."""
    if fen is None:
        return ""
    return f"{Decimal(int(fen)) / 100:,.2f}"


def _cell(value: Any, column: reporting.Column, lang: str) -> Any:
    if value is None:
        return None
    if column.kind == "place":
        return column.text(value, lang)
    if column.kind == "fen":
        return (Decimal(int(value)) / 100).quantize(Decimal("0.01"))
    return value


def _refused(request: Request, exc: DomainError, page: Any, fields: dict[str, str]) -> Response:
    clerk = _clerk(request)
    return _page(
        request,
        clerk.data,
        TEMPLATE,
        exc.status,
        actor=clerk.actor,
        view=None,
        query=fields,
        error=error_text(request, exc),
    )


router = APIRouter(route_class=channel_route(_refused))

Query = Annotated[forms.DashboardQuery, Depends(forms.queried(forms.DashboardQuery))]
FileRef = Annotated[forms.DashboardFile, Depends(forms.routed(forms.DashboardFile))]


def _query_string(view: reporting.Dashboard, lang: str) -> str:
    return f"start={view.period.start}&end={view.period.end}&area={view.area}&lang={lang}"


@router.get("/")
def home(request: Request, query: Query) -> Response:
    clerk = _clerk(request)
    view = reporting.dashboard(
        services_of(request).uow(),
        actor=clerk.actor,
        channel=Channel.COUNTER,
        start=query.start,
        end=query.end,
        area=query.area or None,
    )
    lang = lang_of(request)
    return _page(
        request,
        clerk.data,
        TEMPLATE,
        actor=clerk.actor,
        view=view,
        figures=[view.figures[k] for k in reporting.FIGURES],
        charts=CHARTS,
        levels=reporting.LEVELS,
        channels=reporting.CHANNELS,
        yuan=yuan,
        tz=CHINA,
        qs=_query_string(view, lang),
        query={"start": str(view.period.start), "end": str(view.period.end), "area": view.area},
    )


@router.get("/{figure}.{fmt}")
def download(request: Request, ref: FileRef, query: Query) -> Response:
    """One figure as a file: the same use case, the same numbers, audited as
    a download."""
    clerk = _clerk(request)
    if ref.fmt not in FORMATS:
        return _refused(
            request,
            DomainError(
                "report.format", "下载格式应为csv或xlsx", "a download is csv or xlsx", "fmt", 404
            ),
            None,
            {},
        )
    view = reporting.dashboard(
        services_of(request).uow(),
        actor=clerk.actor,
        channel=Channel.COUNTER,
        start=query.start,
        end=query.end,
        area=query.area or None,
        download=(ref.figure, ref.fmt),
    )
    lang = lang_of(request)
    figure = view.figures[ref.figure]
    header = [c.label(lang) for c in figure.columns]
    rows = [
        [_cell(v, c, lang) for v, c in zip(row, figure.columns, strict=True)] for row in figure.rows
    ]
    name = f"yibao-{figure.key}-{view.area}-{view.period.start}-{view.period.end}.{ref.fmt}"
    if ref.fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(header)
        writer.writerows(["" if v is None else v for v in row] for row in rows)
        # with a byte order mark: spreadsheet programs read the Chinese right
        body = ("\ufeff" + out.getvalue()).encode("utf-8")
    else:
        book = Workbook()
        sheet = book.active
        assert sheet is not None
        sheet.title = figure.key
        sheet.append(header)
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        for row in rows:
            sheet.append(row)
        for i, column in enumerate(figure.columns, start=1):
            if column.kind == "fen":
                for (cell,) in sheet.iter_rows(min_row=2, min_col=i, max_col=i):
                    cell.number_format = "#,##0.00"
        buf = io.BytesIO()
        book.save(buf)
        body = buf.getvalue()
    return Response(
        body,
        media_type=FORMATS[ref.fmt],
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
